// --kv-dtype fp8 end to end on SmolLM2 (issue 16): the same sequences run on a bf16 cache and on an
// FP8 cache (append quantizing per page run, prefill reading FP8 pages through the bf16 staging
// pool, decode kernels reading FP8 pages) give close logits, per method: dense, sliding+Δ with
// DELTA decode, Quest and StreamingLLM, over a prompt of several chunks and pages (rescaled pages
// included: decode appends one row at a time), then decode steps fed the bf16 run's greedy tokens.
// Two sequences share each FP8 step (different methods), so page runs of several slots are covered.
//
// Tolerance (relative L2 of the logits, FP8 vs bf16): kFp8RelativeL2 = 0.2, set before measuring.
// e4m3 keeps 3 mantissa bits (relative error <= 2^-4 per value); averaged by attention and 30 layers
// that moves SmolLM2's logits by a few percent. A wrong page, slot, scale or position moves them by
// O(1) (the bf16 parity tests see > 0.5 for one misplaced cache row), so 0.2 separates the two.
//
// Measured on the H200 (2026-12-02): dense 0.065, StreamingLLM 0.052-0.057, and with budgets that
// hold the whole cache (second test) DELTA 0.057 and Quest 0.045-0.051: the FP8 readers of every
// method are within FP8 rounding. The first test still fails for DELTA at budget 128 (0.29) and
// Quest at budget 32 (0.28-0.33): single decode steps jump (e.g. 0.007, 0.11, 0.23, 0.018, 0.29)
// and fall back, the mark of a page choice that FP8 rounding flips (2 of ~44 pages chosen), not
// of a reading error, which would persist. Left failing, not loosened: counting the differing
// choices per step (an observer of the chosen sets) is what would settle it.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "attention/attention_config.h"
#include "backend/cuda/cuda_transformer.h"
#include "engine/sampler.h"
#include "gpu/gpu_test_support.h"
#include "gpu/model_fixtures.h"
#include "model/model_source.h"
#include "support/batch_driver.h"

namespace deltainfer {
namespace {

using attention::AttentionConfig;
using attention::DecodeKind;
using cuda::test::relative_l2;

constexpr double kFp8RelativeL2 = 0.2;
constexpr int64_t kPrompt = 700;  // 11 pages
constexpr int64_t kChunk = 256;   // a multiple of every γ below: chunks start mid-page
constexpr int kSteps = 8;

// Two sequences, one per method, sharing each forward pass.
using MethodPair = std::array<AttentionConfig, 2>;

struct MethodRun {
  std::vector<std::vector<float>> logits;  // after the prompt, then after each step
};

class KvFp8Model : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string path = model_fixtures::model_path();
    if (!std::filesystem::exists(path)) GTEST_SKIP() << "model absent: " << path;
    source_ = model::open_model_source(path);
    std::mt19937 rng(5);
    prompts_ = {testing::random_prompt(rng, kPrompt, vocab_i()), testing::random_prompt(rng, kPrompt - 37, vocab_i())};
  }

  int32_t vocab_i() const { return source_->config().vocab_size; }
  size_t vocab() const { return static_cast<size_t>(vocab_i()); }

  std::unique_ptr<runtime::Transformer> open(KvDtype dtype) {
    runtime::BackendOptions options;
    options.capacity = 2048;
    options.max_batch = 2;
    options.prefill_chunk = 2 * kChunk;  // a pass holds both sequences' chunks
    options.kv_dtype = dtype;
    return cuda::make_cuda_transformer(*source_, options);
  }

  // Both prompts under methods[0] and methods[1], their chunks and decode steps sharing passes;
  // decode feeds `feed[s]` (or, when empty, the greedy tokens, recorded into it).
  std::vector<MethodRun> run(runtime::Transformer& model, const MethodPair& methods,
                       std::vector<std::vector<int32_t>>& feed) {
    std::vector<runtime::SequenceId> ids;
    for (const AttentionConfig& method : methods) ids.push_back(model.open_sequence(method));
    std::vector<MethodRun> runs(2);
    std::vector<std::vector<float>> logits(2, std::vector<float>(vocab()));
    for (int64_t start = 0; start < kPrompt; start += kChunk) {
      runtime::BatchPlan plan;
      for (size_t s = 0; s < 2; ++s) {
        const auto n = static_cast<int64_t>(prompts_[s].size());
        if (start >= n) continue;
        const int64_t count = std::min(kChunk, n - start);
        plan.entries.push_back(runtime::prefill_entry(ids[s], prompts_[s].data() + start, count, n,
                                                      start + count == n ? logits[s].data() : nullptr));
      }
      model.forward(plan);
    }
    const bool record = feed.empty();
    if (record) feed.assign(2, {});
    for (size_t s = 0; s < 2; ++s) runs[s].logits.push_back(logits[s]);
    for (int step = 0; step < kSteps; ++step) {
      runtime::BatchPlan plan;
      std::vector<int32_t> tokens(2);
      for (size_t s = 0; s < 2; ++s) {
        tokens[s] = record ? engine::argmax(logits[s].data(), vocab_i()) : feed[s][static_cast<size_t>(step)];
        if (record) feed[s].push_back(tokens[s]);
        plan.entries.push_back(runtime::decode_entry(ids[s], &tokens[s], logits[s].data()));
      }
      model.forward(plan);
      for (size_t s = 0; s < 2; ++s) runs[s].logits.push_back(logits[s]);
    }
    for (runtime::SequenceId id : ids) model.close_sequence(id);
    return runs;
  }

  // Runs each pair on a bf16 and an FP8 cache and checks every logits row against kFp8RelativeL2.
  void expect_fp8_close(const std::vector<MethodPair>& pairs) {
    std::unique_ptr<runtime::Transformer> bf16 = open(KvDtype::Bf16);
    std::unique_ptr<runtime::Transformer> fp8 = open(KvDtype::Fp8E4m3);
    for (const MethodPair& pair : pairs) expect_pair_close(*bf16, *fp8, pair);
    EXPECT_EQ(fp8->kv_usage().used_pages, 0);
  }

  void expect_pair_close(runtime::Transformer& bf16, runtime::Transformer& fp8, const MethodPair& pair) {
    std::vector<std::vector<int32_t>> feed;
    const std::vector<MethodRun> want = run(bf16, pair, feed);
    const std::vector<MethodRun> got = run(fp8, pair, feed);
    for (size_t s = 0; s < 2; ++s) {
      const std::string method = attention::describe(pair[s]);
      double worst = 0.0;
      std::string per_step;
      for (size_t i = 0; i < want[s].logits.size(); ++i) {
        const double error = relative_l2(got[s].logits[i], want[s].logits[i]);
        worst = std::max(worst, error);
        per_step += (i == 0 ? "" : " ") + std::to_string(error).substr(0, 6);
        EXPECT_LE(error, kFp8RelativeL2) << method << (i == 0 ? ": prompt logits" : ": decode step ") << i;
      }
      std::printf("KvFp8Model %s: worst logits rel L2 fp8 vs bf16 %.4f over the prompt and %d steps (%s)\n",
                  method.c_str(), worst, kSteps, per_step.c_str());
    }
  }

  std::unique_ptr<model::ModelSource> source_;
  std::vector<std::vector<int32_t>> prompts_;
};

TEST_F(KvFp8Model, Fp8CacheGivesTheBf16LogitsWithinFp8RoundingForEveryMethodPair) {
  const AttentionConfig dense{};
  expect_fp8_close({
      {dense, testing::small_sparse_decode(DecodeKind::Delta, testing::small_sliding_delta())},
      {model_fixtures::small_quest_config(), testing::small_sparse_decode(DecodeKind::Streaming)},
  });
}

// The sparse decode methods with a budget that holds the whole cache (selection still runs; every
// page is chosen): FP8 pages read through the selection and sparse-decode kernels with no page choice
// that FP8 rounding could flip. A reading bug fails here as in the test above; near-tie selection
// flips at small budgets cannot.
TEST_F(KvFp8Model, SparseDecodeOverTheWholeCacheGivesTheBf16Logits) {
  AttentionConfig delta = testing::small_sparse_decode(DecodeKind::Delta, testing::small_sliding_delta());
  AttentionConfig quest = model_fixtures::small_quest_config();
  delta.decode.budget = quest.decode.budget = 2048;
  expect_fp8_close({{delta, quest}});
}

}  // namespace
}  // namespace deltainfer
