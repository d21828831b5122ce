#include "runtime/kv_sequences.h"

#include <gtest/gtest.h>

#include <map>
#include <iostream>
#include <random>

#include "core/error.h"

namespace deltainfer::runtime {
namespace {

constexpr int32_t kVocab = 100;

BatchEntry prefill_entry(SequenceId id, const std::vector<int32_t>& tokens) {
  BatchEntry entry;
  entry.sequence = id;
  entry.tokens = tokens.data();
  entry.n_tokens = static_cast<int64_t>(tokens.size());
  return entry;
}

TEST(KvSequences, PagesFollowTheLength) {
  KvSequences sequences(10, 1000, kVocab);
  const SequenceId id = sequences.open({});
  const std::vector<int32_t> tokens(kKvPageTokens + 1, 3);
  const BatchPlan plan{{prefill_entry(id, tokens)}};
  sequences.reserve(plan, 1000);
  sequences.commit(plan);
  EXPECT_EQ(sequences.at(id).length, kKvPageTokens + 1);
  EXPECT_EQ(sequences.at(id).pages.size(), 2u);
  sequences.truncate(id, kKvPageTokens);
  EXPECT_EQ(sequences.at(id).pages.size(), 1u);
  sequences.truncate(id, 0);
  EXPECT_EQ(sequences.usage().used_pages, 0);
  sequences.close(id);
  EXPECT_EQ(sequences.usage().sequences, 0);
}

TEST(KvSequences, BatchThatDoesNotFitIsRefusedWithNothingAllocated) {
  KvSequences sequences(3, 10000, kVocab);
  const SequenceId a = sequences.open({}), b = sequences.open({});
  const std::vector<int32_t> two_pages(2 * kKvPageTokens, 1), one_page(kKvPageTokens, 1);
  const BatchPlan plan{{prefill_entry(a, two_pages), prefill_entry(b, two_pages)}};
  try {
    sequences.reserve(plan, 10000);
    FAIL() << "a batch of 4 pages fit a pool of 3";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("needs 4 more KV pages"), std::string::npos) << e.what();
  }
  EXPECT_EQ(sequences.usage().used_pages, 0);
  const BatchPlan smaller{{prefill_entry(a, two_pages), prefill_entry(b, one_page)}};
  EXPECT_NO_THROW(sequences.reserve(smaller, 10000)) << "the others go on";
}

TEST(KvSequences, RejectsBadEntries) {
  KvSequences sequences(10, 100, kVocab);
  const SequenceId id = sequences.open({});
  const std::vector<int32_t> bad{1, kVocab};
  EXPECT_THROW(sequences.reserve(BatchPlan{{prefill_entry(id, bad)}}, 100), InputError);
  const std::vector<int32_t> long_prompt(101, 1);
  EXPECT_THROW(sequences.reserve(BatchPlan{{prefill_entry(id, long_prompt)}}, 1000), InputError);
  const std::vector<int32_t> ok(10, 1);
  EXPECT_THROW(sequences.reserve(BatchPlan{{prefill_entry(id, ok), prefill_entry(id, ok)}}, 100), Error);
  EXPECT_THROW(sequences.reserve(BatchPlan{{prefill_entry(id, ok)}}, 5), InputError) << "over the pass's row limit";
  BatchEntry decode = prefill_entry(id, ok);
  decode.decode = true;
  EXPECT_THROW(sequences.reserve(BatchPlan{{decode}}, 100), Error) << "decode of 10 tokens / of an empty sequence";
  EXPECT_THROW(sequences.reserve(BatchPlan{{prefill_entry(id + 5, ok)}}, 100), Error) << "unknown sequence";
  EXPECT_EQ(sequences.usage().used_pages, 0);
}

TEST(KvSequences, TokenNllEntriesNeedTargetsInTheVocabularyAndABuffer) {
  KvSequences sequences(10, 100, kVocab);
  const SequenceId id = sequences.open({});
  const std::vector<int32_t> tokens(3, 1);
  std::vector<double> nlls(3);
  const auto scored = [&](const std::vector<int32_t>& targets, double* out) {
    BatchEntry entry = prefill_entry(id, tokens);
    entry.logits = LogitsFor::TokenNlls;
    entry.targets = targets.empty() ? nullptr : targets.data();
    entry.nlls_out = out;
    return BatchPlan{{entry}};
  };
  const std::vector<int32_t> beyond{1, kVocab, 2}, negative{1, -2, 2}, good{kVocab - 1, 0, kNoTarget};
  EXPECT_THROW(sequences.reserve(scored(beyond, nlls.data()), 100), InputError);
  EXPECT_THROW(sequences.reserve(scored(negative, nlls.data()), 100), InputError) << "only kNoTarget is negative";
  EXPECT_THROW(sequences.reserve(scored(good, nullptr), 100), Error) << "no NLL buffer";
  EXPECT_THROW(sequences.reserve(scored({}, nlls.data()), 100), Error) << "no targets";
  EXPECT_EQ(sequences.usage().used_pages, 0);
  EXPECT_NO_THROW(sequences.reserve(scored(good, nlls.data()), 100));
}

// Thousands of random joins, chunks, decode steps, finishes and cancellations (a cancel is a
// close at any point, a finish a close after decoding): the pages in use always equal the pages
// the open sequences hold, and all come back at the end.
TEST(KvSequences, RandomJoinFinishCancelNeverLeaksPages) {
  const unsigned seed = std::random_device{}();
  std::cout << "[ seed ] " << seed << "\n";
  std::mt19937 rng(seed);
  // A pool that two or three growing sequences fill, so that refusals happen in every run.
  constexpr int32_t kPages = 12;
  KvSequences sequences(kPages, 16 * kKvPageTokens, kVocab);
  std::vector<SequenceId> open;
  const std::vector<int32_t> tokens(3 * kKvPageTokens, 7);
  int refused = 0;
  for (int event = 0; event < 5000; ++event) {
    const int kind = static_cast<int>(rng() % 6);  // 0 join, 1-3 a batch, 4 finish, 5 cancel
    if (kind == 0 || open.empty()) {
      open.push_back(sequences.open({}));
    } else if (kind <= 3) {  // a batch: one chunk or decode step for some of the open sequences
      BatchPlan plan;
      std::vector<SequenceId> shuffled = open;
      std::shuffle(shuffled.begin(), shuffled.end(), rng);
      const size_t count = 1 + rng() % shuffled.size();
      for (size_t i = 0; i < count; ++i) {
        const Sequence& sequence = sequences.at(shuffled[i]);
        BatchEntry entry = prefill_entry(shuffled[i], tokens);
        entry.decode = sequence.length > 0 && rng() % 2 == 0;
        entry.n_tokens = entry.decode ? 1 : 1 + static_cast<int64_t>(rng() % tokens.size());
        if (sequence.length + entry.n_tokens > sequences.capacity()) continue;
        plan.entries.push_back(entry);
      }
      if (plan.entries.empty()) continue;
      const int32_t used_before = sequences.usage().used_pages;
      try {
        sequences.reserve(plan, 1 << 20);
        sequences.commit(plan);
      } catch (const InputError&) {
        ++refused;
        ASSERT_EQ(sequences.usage().used_pages, used_before) << "a refused batch took pages";
      }
    } else {  // finish or cancel
      const size_t at = rng() % open.size();
      if (kind == 5 && sequences.at(open[at]).length > 0) sequences.truncate(open[at], sequences.at(open[at]).length / 2);
      sequences.close(open[at]);
      open.erase(open.begin() + static_cast<long>(at));
    }
    int64_t held = 0;
    for (SequenceId id : open) held += static_cast<int64_t>(sequences.at(id).pages.size());
    ASSERT_EQ(sequences.usage().used_pages, held);
    for (SequenceId id : open) ASSERT_EQ(static_cast<int64_t>(sequences.at(id).pages.size()), pages_for_positions(sequences.at(id).length));
  }
  for (SequenceId id : open) sequences.close(id);
  EXPECT_EQ(sequences.usage().used_pages, 0);
  EXPECT_GT(refused, 0) << "the pool never ran full: the test did not exercise refusal";
}

}  // namespace
}  // namespace deltainfer::runtime
