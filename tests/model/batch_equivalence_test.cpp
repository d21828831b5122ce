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

namespace deltainfer {
namespace {

using attention::AttentionConfig;

// Both runs do the same arithmetic per sequence except the matrix products, which see other rows
// beside the sequence's: f32 round-off only.
constexpr double kRelativeTolerance = 1e-5;
constexpr int64_t kChunk = 256;

struct Workload {
  std::vector<int32_t> prompt;
  AttentionConfig method;
  int join_step = 0;     // the batched run's step at which the sequence arrives
  int decode_steps = 0;  // decode steps after the prompt; it leaves after the last
};

AttentionConfig sliding_delta() {
  AttentionConfig config;
  config.prefill.kind = attention::PrefillKind::Sliding;
  config.prefill.delta = true;
  config.prefill.gamma = 16;
  config.prefill.dense_tail = 16;
  config.window = 64;
  config.sink = 4;
  return config;
}

AttentionConfig sparse_decode(attention::DecodeKind kind) {
  AttentionConfig config;
  config.decode.kind = kind;
  config.decode.budget = 128;
  config.decode.page = 16;
  config.decode.recency = 32;
  config.window = 96;
  config.sink = 4;
  return config;
}

std::vector<Workload> workloads(std::mt19937& rng, int32_t vocab) {
  const auto prompt = [&](int64_t n) {
    std::vector<int32_t> tokens(static_cast<size_t>(n));
    for (int32_t& t : tokens) t = static_cast<int32_t>(rng() % static_cast<uint32_t>(vocab));
    return tokens;
  };
  return {
      {prompt(1), AttentionConfig{}, 0, 6},
      {prompt(45), sparse_decode(attention::DecodeKind::Quest), 0, 3},
      {prompt(300), sliding_delta(), 1, 5},
      {prompt(700), sparse_decode(attention::DecodeKind::Delta), 2, 6},
      {prompt(1500), sparse_decode(attention::DecodeKind::Streaming), 4, 4},
      {prompt(2200), AttentionConfig{}, 3, 2},
  };
}

using runtime::decode_entry;
using runtime::prefill_entry;

// Logits after the prompt and after each decode step, and the greedy tokens, of one sequence run
// alone (batches of one entry).
struct AloneRun {
  std::vector<std::vector<float>> logits;
  std::vector<int32_t> greedy;
};

AloneRun run_alone(backend::cpu::CpuTransformer& model, const Workload& w) {
  const size_t vocab = static_cast<size_t>(model.config().vocab_size);
  const runtime::SequenceId id = model.open_sequence(w.method);
  const int64_t n = static_cast<int64_t>(w.prompt.size());
  AloneRun run;
  std::vector<float> logits(vocab);
  for (int64_t start = 0; start < n; start += kChunk) {
    const int64_t count = std::min(kChunk, n - start);
    model.forward(runtime::BatchPlan{{prefill_entry(id, w.prompt.data() + start, count, n, logits.data())}});
  }
  run.logits.push_back(logits);
  for (int step = 0; step < w.decode_steps; ++step) {
    run.greedy.push_back(engine::argmax(logits.data(), static_cast<int32_t>(vocab)));
    model.forward(runtime::BatchPlan{{decode_entry(id, &run.greedy.back(), logits.data())}});
    run.logits.push_back(logits);
  }
  model.close_sequence(id);
  return run;
}

double relative_difference(const std::vector<float>& got, const std::vector<float>& want) {
  double worst = 0, scale = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    worst = std::max(worst, std::fabs(double{got[i]} - want[i]));
    scale = std::max(scale, std::fabs(double{want[i]}));
  }
  return worst / scale;
}

// One sequence's progress in the batched run: fed the alone run's tokens (teacher forcing), so a
// near-tie cannot make the two runs diverge; greedy agreement is checked separately.
struct Live {
  runtime::SequenceId id = -1;
  int64_t prompt_done = 0;
  int decodes_done = 0;
  std::vector<std::vector<float>> logits;
  std::vector<float> buffer;
  bool finished = false;
};

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
  backend::cpu::CpuTransformer model(*source, pool(4096, 160));
  std::mt19937 rng(std::random_device{}());
  const std::vector<Workload> work = workloads(rng, source->config().vocab_size);

  std::vector<AloneRun> alone;
  for (const Workload& w : work) alone.push_back(run_alone(model, w));
  ASSERT_EQ(model.kv_usage().used_pages, 0) << "closed sequences returned their pages";

  const size_t vocab = static_cast<size_t>(source->config().vocab_size);
  std::vector<Live> live(work.size());
  int mixed_steps = 0;
  for (int step = 0; std::any_of(live.begin(), live.end(), [](const Live& l) { return !l.finished; }); ++step) {
    runtime::BatchPlan plan;
    std::vector<size_t> members;
    for (size_t s = 0; s < work.size(); ++s) {
      const Workload& w = work[s];
      Live& l = live[s];
      if (l.finished || w.join_step > step) continue;
      if (l.id < 0) {
        l.id = model.open_sequence(w.method);
        l.buffer.resize(vocab);
      }
      const int64_t n = static_cast<int64_t>(w.prompt.size());
      if (l.prompt_done < n) {
        const int64_t count = std::min(kChunk, n - l.prompt_done);
        plan.entries.push_back(prefill_entry(l.id, w.prompt.data() + l.prompt_done, count, n, l.buffer.data()));
        l.prompt_done += count;
      } else {
        const int32_t* token = &alone[s].greedy[static_cast<size_t>(l.decodes_done)];
        plan.entries.push_back(decode_entry(l.id, token, l.buffer.data()));
        ++l.decodes_done;
      }
      members.push_back(s);
    }
    const bool has_decode = std::any_of(plan.entries.begin(), plan.entries.end(), [](auto& e) { return e.decode; });
    const bool has_prefill = std::any_of(plan.entries.begin(), plan.entries.end(), [](auto& e) { return !e.decode; });
    mixed_steps += has_decode && has_prefill;
    model.forward(plan);
    for (size_t s : members) {
      Live& l = live[s];
      if (l.prompt_done < static_cast<int64_t>(work[s].prompt.size())) continue;  // mid-prompt chunk: no logits yet
      l.logits.push_back(l.buffer);
      if (l.decodes_done == work[s].decode_steps) {  // leaves between steps
        model.close_sequence(l.id);
        l.finished = true;
      }
    }
  }
  EXPECT_GT(mixed_steps, 0) << "no step mixed prefill chunks with decode steps";
  EXPECT_EQ(model.kv_usage().used_pages, 0);

  for (size_t s = 0; s < work.size(); ++s) {
    ASSERT_EQ(live[s].logits.size(), alone[s].logits.size()) << "sequence " << s;
    for (size_t i = 0; i < alone[s].logits.size(); ++i) {
      EXPECT_LE(relative_difference(live[s].logits[i], alone[s].logits[i]), kRelativeTolerance)
          << "sequence " << s << " (" << attention::describe(work[s].method) << "), logits row " << i;
      if (i + 1 < alone[s].logits.size()) {
        EXPECT_EQ(engine::argmax(live[s].logits[i].data(), static_cast<int32_t>(vocab)), alone[s].greedy[i])
            << "sequence " << s << " greedy token " << i;
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
  options.attention = sliding_delta();
  backend::cpu::CpuTransformer model(*source, options);
  std::mt19937 rng(std::random_device{}());
  std::vector<int32_t> prompt(250);
  for (int32_t& t : prompt) t = static_cast<int32_t>(rng() % 1000);
  const size_t vocab = static_cast<size_t>(source->config().vocab_size);
  std::vector<float> helper(vocab), explicit_batch(vocab);
  model.forward(prompt.data(), 250, runtime::LogitsFor::LastToken, helper.data());

  const runtime::SequenceId id = model.open_sequence(sliding_delta());
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
