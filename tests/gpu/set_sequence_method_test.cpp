// Transformer::set_sequence_method on the GPU: a sequence prefilled once, decoded under one
// method, cut back to its prompt and switched to another decodes as a fresh sequence opened with
// that method (the eval's shared prefill), within the bf16 logit tolerance of the batch test; the
// switch also leaves Quest's key bounds rebuilt for the new method. Both runs are fed the fresh
// run's greedy tokens, so a near-tie cannot make them diverge.
#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <random>
#include <vector>

#include "attention/attention_config.h"
#include "backend/cuda/cuda_transformer.h"
#include "core/error.h"
#include "engine/sampler.h"
#include "gpu/gpu_test_support.h"
#include "gpu/model_fixtures.h"
#include "model/model_source.h"
#include "support/batch_driver.h"
#include "support/prefill_switch_refusal.h"

namespace deltainfer {
namespace {

using attention::AttentionConfig;
using attention::DecodeKind;
using cuda::test::relative_l2;

// ModelParity's bf16 logit tolerance (relative L2), as in the GPU batch-equivalence test.
constexpr double kRelativeL2 = 8e-2;
constexpr int64_t kPrompt = 700;
constexpr int64_t kChunk = 256;  // a multiple of every γ below
constexpr int kSteps = 8;

struct DecodeRun {
  std::vector<std::vector<float>> logits;  // after the prompt, then after each step
  std::vector<int32_t> tokens;             // fed at each step
};

class GpuSetSequenceMethod : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string path = model_fixtures::model_path();
    if (!std::filesystem::exists(path)) GTEST_SKIP() << "model absent: " << path;
    source_ = model::open_model_source(path);
    runtime::BackendOptions options;
    options.capacity = 2048;
    options.max_batch = 2;
    options.prefill_chunk = kChunk;
    model_ = cuda::make_cuda_transformer(*source_, options);
    std::mt19937 rng(11);
    prompt_ = testing::random_prompt(rng, kPrompt, source_->config().vocab_size);
  }

  size_t vocab() const { return static_cast<size_t>(source_->config().vocab_size); }

  std::vector<float> prefill(runtime::SequenceId id) {
    std::vector<float> logits(vocab());
    for (int64_t start = 0; start < kPrompt; start += kChunk) {
      model_->forward(runtime::BatchPlan{{runtime::prefill_entry(
          id, prompt_.data() + start, std::min(kChunk, kPrompt - start), kPrompt, logits.data())}});
    }
    return logits;
  }

  // Decode steps from `first` logits, feeding `tokens` (or, when empty, the greedy ones, recorded).
  DecodeRun decode(runtime::SequenceId id, std::vector<float> logits, std::vector<int32_t> tokens) {
    DecodeRun run;
    run.logits.push_back(logits);
    for (int step = 0; step < kSteps; ++step) {
      int32_t token = tokens.empty() ? engine::argmax(logits.data(), static_cast<int32_t>(vocab()))
                                     : tokens[static_cast<size_t>(step)];
      run.tokens.push_back(token);
      model_->forward(runtime::BatchPlan{{runtime::decode_entry(id, &token, logits.data())}});
      run.logits.push_back(logits);
    }
    return run;
  }

  std::unique_ptr<model::ModelSource> source_;
  std::unique_ptr<runtime::Transformer> model_;
  std::vector<int32_t> prompt_;
};

TEST_F(GpuSetSequenceMethod, SwitchedAfterThePromptDecodesAsAFreshSequence) {
  const AttentionConfig quest = model_fixtures::small_quest_config();
  const std::vector<std::pair<AttentionConfig, AttentionConfig>> switches = {
      {AttentionConfig{}, testing::small_sparse_decode(DecodeKind::Delta)},
      {testing::small_sparse_decode(DecodeKind::Delta), quest},
      {quest, testing::small_sparse_decode(DecodeKind::Tidal)},
      {testing::small_sparse_decode(DecodeKind::Tidal), AttentionConfig{}},
      {testing::small_sliding_delta(), testing::small_sparse_decode(DecodeKind::Delta, testing::small_sliding_delta())},
  };
  for (const auto& [first, then] : switches) {
    SCOPED_TRACE(attention::describe(first) + " -> " + attention::describe(then));
    const runtime::SequenceId fresh = model_->open_sequence(then);
    const DecodeRun want = decode(fresh, prefill(fresh), {});
    model_->close_sequence(fresh);

    const runtime::SequenceId shared = model_->open_sequence(first);
    const std::vector<float> prompt_logits = prefill(shared);
    decode(shared, prompt_logits, want.tokens);  // the first method's decode state and graphs
    model_->truncate_sequence(shared, kPrompt);
    model_->set_sequence_method(shared, then);
    const DecodeRun got = decode(shared, prompt_logits, want.tokens);
    model_->close_sequence(shared);
    EXPECT_LE(relative_l2(prompt_logits, want.logits[0]), kRelativeL2) << "prompt logits";
    for (size_t i = 1; i < want.logits.size(); ++i) {
      EXPECT_LE(relative_l2(got.logits[i], want.logits[i]), kRelativeL2) << "decode step " << i;
    }
  }
  EXPECT_EQ(model_->kv_usage().used_pages, 0);
}

TEST_F(GpuSetSequenceMethod, AnotherPrefillIsRefusedWhilePositionsAreHeld) {
  const runtime::SequenceId id = model_->open_sequence(AttentionConfig{});
  prefill(id);
  testing::expect_prefill_switch_refused_while_positions_held(*model_, id);
}

}  // namespace
}  // namespace deltainfer
