// The batch-first forward pass on the CPU: sequences of different lengths, each under its own
// attention method, run in one batch (prefill chunks beside decode steps, joining and leaving
// between steps) give each sequence the logits it gets when it runs alone.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "backend/cpu/cpu_transformer.h"
#include "core/error.h"
#include "engine/sampler.h"
#include "model/model_source.h"
#include "model_test_support.h"
#include "support/batch_driver.h"

namespace deltainfer {
namespace {

using attention::AttentionConfig;
using testing::relative_difference;
using runtime::decode_entry;
using runtime::prefill_entry;
using testing::BatchedRuns;
using testing::random_prompt;
using testing::SequenceRun;
using testing::small_sliding_delta;
using testing::small_sparse_decode;
using testing::Workload;

// Both runs do the same arithmetic per sequence except the matrix products, which see other rows
// beside the sequence's: f32 round-off only.
constexpr double kRelativeTolerance = 1e-5;
constexpr int64_t kChunk = 256;

std::vector<Workload> workloads(std::mt19937& rng, int32_t vocab) {
  const auto prompt = [&](int64_t n) { return random_prompt(rng, n, vocab); };
  return {
      {prompt(1), AttentionConfig{}, 0, 6},
      {prompt(45), small_sparse_decode(attention::DecodeKind::Quest), 0, 3},
      {prompt(300), small_sliding_delta(), 1, 5},
      {prompt(700), small_sparse_decode(attention::DecodeKind::Delta), 2, 6},
      {prompt(900), small_sparse_decode(attention::DecodeKind::Streaming), 4, 4},
      {prompt(1300), AttentionConfig{}, 3, 2},
  };
}

runtime::BackendOptions pool(int64_t capacity, int64_t pages, int64_t chunk = 8192) {
  runtime::BackendOptions options;
  options.capacity = capacity;
  options.kv_pages = pages;
  options.prefill_chunk = chunk;
  return options;
}

TEST(BatchEquivalence, MixedBatchGivesEachSequenceItsAloneLogits) {
  DELTAINFER_REQUIRE_SMOLLM2();
  const auto source = model::open_model_source(testing::smollm2_path());
  // The f32 path: with quantized weights a decode row beside a prefill chunk of 32 rows or more
  // goes through the f32 panels instead of 8-bit activations (a ~1% change of its logits); below
  // 32 rows a row's product is the same batched or alone (unit test ARowsProductDoesNotDependOnTheBatch).
  const testing::ScopedCpuWeights f32("f32");
  backend::cpu::CpuTransformer model(*source, pool(4096, 160));
  std::mt19937 rng(std::random_device{}());
  const std::vector<Workload> work = workloads(rng, source->config().vocab_size);

  std::vector<SequenceRun> alone;
  for (const Workload& w : work) alone.push_back(run_alone(model, w, kChunk));
  ASSERT_EQ(model.kv_usage().used_pages, 0) << "closed sequences returned their pages";
  const BatchedRuns batched = run_batched(model, work, alone, kChunk);
  EXPECT_GT(batched.mixed_steps, 0) << "no step mixed prefill chunks with decode steps";
  EXPECT_EQ(model.kv_usage().used_pages, 0);

  const int32_t vocab = source->config().vocab_size;
  for (size_t s = 0; s < work.size(); ++s) {
    ASSERT_EQ(batched.sequences[s].logits.size(), alone[s].logits.size()) << "sequence " << s;
    for (size_t i = 0; i < alone[s].logits.size(); ++i) {
      EXPECT_LE(relative_difference(batched.sequences[s].logits[i], alone[s].logits[i]), kRelativeTolerance)
          << "sequence " << s << " (" << attention::describe(work[s].method) << "), logits row " << i;
      if (i + 1 < alone[s].logits.size()) {
        // The same greedy token, unless the alone run's top two logits are closer than the
        // round-off the logits may differ by (a near-tie, which the tolerance above allows).
        const std::vector<float>& want = alone[s].logits[i];
        const int32_t got = engine::argmax(batched.sequences[s].logits[i].data(), vocab);
        const float scale = *std::max_element(want.begin(), want.end(), [](float a, float b) {
          return std::fabs(a) < std::fabs(b);
        });
        const bool near_tie = want[static_cast<size_t>(alone[s].greedy[i])] - want[static_cast<size_t>(got)] <=
                              2 * kRelativeTolerance * std::fabs(scale);
        EXPECT_TRUE(got == alone[s].greedy[i] || near_tie) << "sequence " << s << " greedy token " << i;
      }
    }
  }
}

// The single-sequence path is a batch of one: forward(tokens) on the default sequence gives the
// same logits as an explicit one-entry batch on a fresh sequence of the same method.
TEST(BatchEquivalence, SingleSequenceHelperIsABatchOfOne) {
  DELTAINFER_REQUIRE_SMOLLM2();
  const auto source = model::open_model_source(testing::smollm2_path());
  runtime::BackendOptions options = pool(512, 16, 100);
  options.attention = small_sliding_delta();
  backend::cpu::CpuTransformer model(*source, options);
  std::mt19937 rng(std::random_device{}());
  std::vector<int32_t> prompt(250);
  for (int32_t& t : prompt) t = static_cast<int32_t>(rng() % 1000);
  const size_t vocab = static_cast<size_t>(source->config().vocab_size);
  std::vector<float> helper(vocab), explicit_batch(vocab);
  model.forward(prompt.data(), 250, runtime::LogitsFor::LastToken, helper.data());

  const runtime::SequenceId id = model.open_sequence(small_sliding_delta());
  for (int64_t start = 0; start < 250; start += 100) {
    model.forward(runtime::BatchPlan{
        {prefill_entry(id, prompt.data() + start, std::min<int64_t>(100, 250 - start), 250, explicit_batch.data())}});
  }
  EXPECT_EQ(helper, explicit_batch);
}

TEST(BatchEquivalence, BatchOverThePoolIsRefusedAndTheOthersGoOn) {
  DELTAINFER_REQUIRE_SMOLLM2();
  const auto source = model::open_model_source(testing::smollm2_path());
  backend::cpu::CpuTransformer model(*source, pool(1024, 4));
  const size_t vocab = static_cast<size_t>(source->config().vocab_size);
  std::vector<float> logits(vocab);
  const std::vector<int32_t> tokens(3 * kKvPageTokens, 42);
  const runtime::SequenceId a = model.open_sequence({}), b = model.open_sequence({});
  model.forward(runtime::BatchPlan{{prefill_entry(a, tokens.data(), 3 * kKvPageTokens, 0, logits.data())}});
  EXPECT_THROW(
      model.forward(runtime::BatchPlan{{prefill_entry(b, tokens.data(), 2 * kKvPageTokens, 0, logits.data())}}),
      InputError);
  EXPECT_EQ(model.sequence_length(b), 0);
  const int32_t next = engine::argmax(logits.data(), static_cast<int32_t>(vocab));
  EXPECT_NO_THROW(model.forward(runtime::BatchPlan{{decode_entry(a, &next, logits.data())}}));
  EXPECT_EQ(model.sequence_length(a), 3 * kKvPageTokens + 1);
}

}  // namespace
}  // namespace deltainfer
