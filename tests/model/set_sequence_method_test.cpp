// Transformer::set_sequence_method on the CPU: a sequence prefilled once, decoded under one
// method, cut back to its prompt and switched to another decodes exactly as a fresh sequence
// opened with that method (what the eval's shared prefill relies on); a method that prefills
// otherwise is refused while the sequence holds positions.
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
#include "support/prefill_switch_refusal.h"

namespace deltainfer {
namespace {

using attention::AttentionConfig;
using testing::relative_difference;
using attention::DecodeKind;

constexpr double kRelativeTolerance = 1e-5;
constexpr int64_t kPrompt = 300;  // beyond the sparse budgets of 128: the methods select
constexpr int kSteps = 6;

class SetSequenceMethod : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(testing::smollm2_path())) GTEST_SKIP() << "run scripts/fetch-model";
    source_ = model::open_model_source(testing::smollm2_path());
    runtime::BackendOptions options;
    options.capacity = 512;
    options.kv_pages = 24;
    options.prefill_chunk = 128;
    model_ = std::make_unique<backend::cpu::CpuTransformer>(*source_, options);
    std::mt19937 rng(7);
    prompt_ = testing::random_prompt(rng, kPrompt, source_->config().vocab_size);
  }

  size_t vocab() const { return static_cast<size_t>(source_->config().vocab_size); }

  // Prefills a new sequence of `method`; the prompt's last logits in `logits`.
  runtime::SequenceId prefilled(const AttentionConfig& method, std::vector<float>& logits) {
    const runtime::SequenceId id = model_->open_sequence(method);
    logits.assign(vocab(), 0.0f);
    for (int64_t start = 0; start < kPrompt; start += 128) {
      model_->forward(runtime::BatchPlan{{runtime::prefill_entry(id, prompt_.data() + start,
                                                                 std::min<int64_t>(128, kPrompt - start), kPrompt,
                                                                 logits.data())}});
    }
    return id;
  }

  // Greedy decode steps from `logits`: the logits after each.
  std::vector<std::vector<float>> decode(runtime::SequenceId id, std::vector<float> logits) {
    std::vector<std::vector<float>> rows;
    for (int step = 0; step < kSteps; ++step) {
      int32_t token = engine::argmax(logits.data(), static_cast<int32_t>(vocab()));
      model_->forward(runtime::BatchPlan{{runtime::decode_entry(id, &token, logits.data())}});
      rows.push_back(logits);
    }
    return rows;
  }

  std::unique_ptr<model::ModelSource> source_;
  std::unique_ptr<backend::cpu::CpuTransformer> model_;
  std::vector<int32_t> prompt_;
};

TEST_F(SetSequenceMethod, SwitchedAfterThePromptDecodesAsAFreshSequence) {
  const std::vector<std::pair<AttentionConfig, AttentionConfig>> switches = {
      {AttentionConfig{}, testing::small_sparse_decode(DecodeKind::Delta)},
      {testing::small_sparse_decode(DecodeKind::Delta), testing::small_sparse_decode(DecodeKind::Quest)},
      {testing::small_sparse_decode(DecodeKind::Quest), testing::small_sparse_decode(DecodeKind::Tidal)},
      {testing::small_sparse_decode(DecodeKind::Tidal), AttentionConfig{}},
      {testing::small_sliding_delta(), testing::small_sparse_decode(DecodeKind::Delta, testing::small_sliding_delta())},
  };
  for (const auto& [first, then] : switches) {
    SCOPED_TRACE(attention::describe(first) + " -> " + attention::describe(then));
    std::vector<float> fresh_logits, shared_logits;
    const runtime::SequenceId fresh = prefilled(then, fresh_logits);
    const std::vector<std::vector<float>> want = decode(fresh, fresh_logits);
    model_->close_sequence(fresh);

    const runtime::SequenceId shared = prefilled(first, shared_logits);
    decode(shared, shared_logits);  // leaves the first method's decode state behind
    model_->truncate_sequence(shared, kPrompt);
    model_->set_sequence_method(shared, then);
    const std::vector<std::vector<float>> got = decode(shared, shared_logits);
    model_->close_sequence(shared);
    EXPECT_LE(relative_difference(shared_logits, fresh_logits), kRelativeTolerance) << "prompt logits";
    for (size_t i = 0; i < want.size(); ++i) {
      EXPECT_LE(relative_difference(got[i], want[i]), kRelativeTolerance) << "decode step " << i;
    }
  }
}

TEST_F(SetSequenceMethod, AnotherPrefillIsRefusedWhilePositionsAreHeld) {
  std::vector<float> logits;
  const runtime::SequenceId id = prefilled(AttentionConfig{}, logits);
  testing::expect_prefill_switch_refused_while_positions_held(*model_, id);
}

}  // namespace
}  // namespace deltainfer
