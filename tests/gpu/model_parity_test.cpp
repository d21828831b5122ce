// The whole model on the GPU against the CPU path on SmolLM2 and Qwen2.5-Coder-0.5B: greedy tokens
// must agree (up to a near-tie, shown), and the logits must stay close. The model is found at $DELTAINFER_MODEL or models/ (the device machine
// gets it carried in two parts by scripts/gpu-check's caller; the test skips when it is absent).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "attention/attention_config.h"
#include "backend/cpu/cpu_transformer.h"
#include "backend/cuda/cuda_transformer.h"
#include "engine/sampler.h"
#include "gpu/model_fixtures.h"
#include "model/model_source.h"
#include "support/scoped_cpu_weights.h"
#include "tokenizer/tokenizer.h"

namespace deltainfer {
namespace {

using model_fixtures::long_context_prompts;
using model_fixtures::model_path;
using model_fixtures::short_prompts;
using model_fixtures::small_quest_config;

// Greedy continuation; step_logits (optional) receives the logits each token was chosen from.
std::vector<int32_t> greedy(runtime::Transformer& model, const std::vector<int32_t>& prompt, int count,
                            std::vector<float>* first_logits, std::vector<std::vector<float>>* step_logits = nullptr) {
  const int32_t vocab = model.config().vocab_size;
  std::vector<float> logits(static_cast<size_t>(vocab));
  model.truncate(0);
  model.forward(prompt.data(), static_cast<int64_t>(prompt.size()), runtime::LogitsFor::LastToken, logits.data());
  if (first_logits != nullptr) *first_logits = logits;
  std::vector<int32_t> tokens;
  for (int i = 0; i < count; ++i) {
    int32_t token = engine::argmax(logits.data(), vocab);
    tokens.push_back(token);
    if (step_logits != nullptr) step_logits->push_back(logits);
    model.forward(&token, 1, runtime::LogitsFor::LastToken, logits.data());
  }
  return tokens;
}

// Free-running greedy runs of a bf16 GPU and an f32 CPU may part at a near-tie. At the step where
// they part both have read the same tokens, so their logits there are comparable; a parting means
// the two contested logits' GPU-CPU errors add up to more than the CPU's gap between them. It is a
// near-tie when each of those errors is within bf16 rounding (kBf16TopLogitError, the bound the
// teacher-forced tests assert on the top-20 logits at every step); a wrong position, cache slot or
// selected set moves logits by several units (relative L2 2.5-3.9 seen before the recency-page
// fix). Measured on the H200 (2026-12-01), teacher-forced, worst top-20 logit error: 0.26-0.30
// dense, 0.30-0.38 sparse prefill, 0.70 Quest on the long prompts (relative L2 0.03-0.07): bf16
// rounding moves SmolLM2's largest logits (~15-25) by a few tenths, so the earlier gap rule
// (0.15) called rounding a failure. After a parting the runs continue different texts and are
// not compared further.
constexpr double kBf16TopLogitError = 1.0;

void expect_same_greedy_up_to_a_near_tie(const std::vector<int32_t>& got, const std::vector<int32_t>& want,
                                         const std::vector<std::vector<float>>& want_logits,
                                         const std::vector<std::vector<float>>& got_logits,
                                         const std::string& prompt) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    if (got[i] == want[i]) continue;
    const std::vector<float>& cpu = want_logits[i];
    const std::vector<float>& gpu = got_logits[i];
    const auto w = static_cast<size_t>(want[i]), g = static_cast<size_t>(got[i]);
    const double gap = cpu[w] - cpu[g];
    const double error_want = std::fabs(gpu[w] - cpu[w]), error_got = std::fabs(gpu[g] - cpu[g]);
    const bool rounding = std::max(error_want, error_got) <= kBf16TopLogitError;
    std::cout << "    greedy parts at step " << i << " (CPU " << want[i] << ", GPU " << got[i]
              << "): the CPU's logits differ by " << gap << " there; GPU-CPU error of the two logits "
              << error_want << ", " << error_got << " ("
              << (rounding ? "a near-tie" : "NOT a near-tie") << ")\n";
    EXPECT_TRUE(rounding) << "prompt: " << prompt << ", step " << i;
    return;
  }
}

// Largest |GPU - CPU| over the CPU's top `k` logits: the error that decides greedy choices.
double top_logit_error(const std::vector<float>& gpu, const std::vector<float>& cpu, size_t k = 20) {
  std::vector<size_t> order(cpu.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(k), order.end(),
                    [&](size_t a, size_t b) { return cpu[a] > cpu[b]; });
  double worst = 0;
  for (size_t j = 0; j < k; ++j) worst = std::max(worst, std::fabs(double{gpu[order[j]]} - cpu[order[j]]));
  return worst;
}

// bf16 weights and activations on the GPU vs f32 on the CPU: over 30 layers the logits differ by
// a few % in relative L2 (observed up to 5.4e-2 on these prompts, dense); a wrong position, cache
// slot or selected set gives errors of order 1 (seen before the recency-page fix: 2.5-3.9).
constexpr double kBf16LogitTolerance = 8e-2;

// The model on both backends under one attention config, with the same chunk size.
struct Backends {
  Backends(const std::string& path, const attention::AttentionConfig& attention)
      : source(model::open_model_source(path)), tok(tokenizer::Tokenizer::load(path)) {
    runtime::BackendOptions options;
    options.capacity = 512;
    options.prefill_chunk = 64;
    options.attention = attention;
    // The f32 CPU reference: the parity bounds are bf16 vs f32, not vs 8-bit activations.
    const testing::ScopedCpuWeights f32("f32");
    cpu = std::make_unique<backend::cpu::CpuTransformer>(*source, options);
    gpu = cuda::make_cuda_transformer(*source, options);
  }
  std::unique_ptr<model::ModelSource> source;
  tokenizer::Tokenizer tok;
  std::unique_ptr<runtime::Transformer> cpu;
  std::unique_ptr<runtime::Transformer> gpu;
};

// Small window, stride and budget so that the short prompts really run sparse: sliding+Δ prefill
// (window 16, sink 4, γ 16, fused correction on the GPU, dense tail of 16 rows) and DELTA decode (budget 32 of ~70-100
// positions, pages of 16, recency 16).
// Δ prefill of `kind` with γ 16 (fused correction on the GPU) and a dense tail of 16 rows.
attention::AttentionConfig small_delta_prefill(attention::PrefillKind kind) {
  attention::AttentionConfig sparse;
  sparse.prefill.kind = kind;
  sparse.prefill.delta = true;
  sparse.prefill.gamma = 16;
  sparse.prefill.dense_tail = 16;
  return sparse;
}

attention::AttentionConfig small_sparse_config() {
  attention::AttentionConfig sparse = small_delta_prefill(attention::PrefillKind::Sliding);
  sparse.window = 16;
  sparse.sink = 4;
  sparse.decode.kind = attention::DecodeKind::Delta;
  sparse.decode.budget = 32;
  sparse.decode.page = 16;
  sparse.decode.recency = 16;
  return sparse;
}

// Both backends fed the same tokens (the CPU's greedy continuation, "teacher forcing"): the GPU
// must compute the same function at every step, within bf16 error, so a divergence of the free
// greedy runs below can only come from a near-tie, not from a decode-path bug.
void expect_same_logits_when_fed_the_same_tokens(const attention::AttentionConfig& attention, int count,
                                                 double tolerance,
                                                 const std::vector<std::string>& prompts = short_prompts(),
                                                 const std::string& path = model_path()) {
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "model absent: " << path;
  const Backends both(path, attention);
  const tokenizer::Tokenizer& tok = both.tok;
  runtime::Transformer& cpu = *both.cpu;
  runtime::Transformer* gpu = both.gpu.get();
  const int32_t vocab = both.source->config().vocab_size;
  std::vector<float> cpu_logits(static_cast<size_t>(vocab)), gpu_logits(cpu_logits.size());
  for (const std::string& prompt : prompts) {
    const std::vector<int32_t> ids = tok.encode(prompt, /*parse_special=*/true);
    cpu.truncate(0);
    gpu->truncate(0);
    cpu.forward(ids.data(), static_cast<int64_t>(ids.size()), runtime::LogitsFor::LastToken, cpu_logits.data());
    gpu->forward(ids.data(), static_cast<int64_t>(ids.size()), runtime::LogitsFor::LastToken, gpu_logits.data());
    double worst = 0, worst_top = 0;
    int agree = 0;
    for (int step = 0; step < count; ++step) {
      worst_top = std::max(worst_top, top_logit_error(gpu_logits, cpu_logits));
      double diff = 0, norm = 0;
      for (size_t i = 0; i < cpu_logits.size(); ++i) {
        diff += (gpu_logits[i] - cpu_logits[i]) * (gpu_logits[i] - cpu_logits[i]);
        norm += cpu_logits[i] * cpu_logits[i];
      }
      worst = std::max(worst, std::sqrt(diff / norm));
      int32_t token = engine::argmax(cpu_logits.data(), vocab);
      agree += token == engine::argmax(gpu_logits.data(), vocab);
      cpu.forward(&token, 1, runtime::LogitsFor::LastToken, cpu_logits.data());
      gpu->forward(&token, 1, runtime::LogitsFor::LastToken, gpu_logits.data());
    }
    std::cout << "prompt " << prompt.substr(0, 24) << ": teacher-forced " << count
              << " steps, worst logits rel L2 " << worst << ", worst top-20 logit error " << worst_top
              << ", argmax agrees at " << agree << "/" << count << "\n";
    EXPECT_LT(worst, tolerance) << "prompt: " << prompt;
    EXPECT_LE(worst_top, kBf16TopLogitError) << "prompt: " << prompt;
  }
}

// Greedy generation of `count` tokens under `attention` on both backends, prompt by prompt.
void expect_parity(const attention::AttentionConfig& attention, int count,
                   const std::vector<std::string>& prompts = short_prompts(), const std::string& path = model_path()) {
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "model absent: " << path;
  const Backends both(path, attention);
  const tokenizer::Tokenizer& tok = both.tok;
  runtime::Transformer& cpu = *both.cpu;
  runtime::Transformer* gpu = both.gpu.get();
  for (const std::string& prompt : prompts) {
    const std::vector<int32_t> ids = tok.encode(prompt, /*parse_special=*/true);
    std::vector<float> cpu_logits, gpu_logits;
    std::vector<std::vector<float>> cpu_steps, gpu_steps;
    const std::vector<int32_t> want = greedy(cpu, ids, count, &cpu_logits, &cpu_steps);
    const std::vector<int32_t> got = greedy(*gpu, ids, count, &gpu_logits, &gpu_steps);
    double diff = 0, norm = 0;
    for (size_t i = 0; i < cpu_logits.size(); ++i) {
      diff += (gpu_logits[i] - cpu_logits[i]) * (gpu_logits[i] - cpu_logits[i]);
      norm += cpu_logits[i] * cpu_logits[i];
    }
    const double relative = std::sqrt(diff / norm);
    std::cout << "prompt " << prompt.substr(0, 24) << ": logits rel L2 (bf16 GPU vs f32 CPU) "
              << relative << "\n";
    EXPECT_LT(relative, 3e-2);  // bf16 weights and activations vs f32 everywhere
    expect_same_greedy_up_to_a_near_tie(got, want, cpu_steps, gpu_steps, prompt);
  }
}

TEST(ModelParity, GpuGreedyTokensEqualCpuForSixtyFourTokens) { expect_parity(attention::AttentionConfig{}, 64); }

TEST(ModelParity, GpuLogitsFollowCpuWhenFedTheSameTokens) {
  expect_same_logits_when_fed_the_same_tokens(attention::AttentionConfig{}, 64, kBf16LogitTolerance);
}

TEST(ModelParity, SlidingDeltaPrefillAndDeltaDecodeEqualCpuForThirtyTwoTokens) {
  expect_parity(small_sparse_config(), 32);
}

// Vertical-slash+Δ prefill with few columns and diagonals (8 each, γ 16, dense tail 16), dense
// decode, on the long-context prompts (310-325 tokens, chunks of 64): from row 192 on, the chunks skip
// the key blocks that no kept column or diagonal reaches.
attention::AttentionConfig small_vslash_config() {
  attention::AttentionConfig sparse = small_delta_prefill(attention::PrefillKind::VerticalSlash);
  sparse.prefill.vertical = 8;
  sparse.prefill.slash = 8;
  return sparse;
}

TEST(ModelParity, VerticalSlashDeltaPrefillEqualsCpuForThirtyTwoTokens) {
  expect_parity(small_vslash_config(), 32, long_context_prompts());
}

TEST(ModelParity, VerticalSlashGpuLogitsFollowCpuWhenFedTheSameTokens) {
  expect_same_logits_when_fed_the_same_tokens(small_vslash_config(), 32, kBf16LogitTolerance, long_context_prompts());
}

TEST(ModelParity, SparseGpuLogitsFollowCpuWhenFedTheSameTokens) {
  expect_same_logits_when_fed_the_same_tokens(small_sparse_config(), 32, kBf16LogitTolerance);
}

// Quest over whole-model runs at 8 of ~20-23 pages per KV head (budget 128, the long prompts).
// At budget 32 (one free page per head) whole-model runs are decided by near-ties: bf16 scoring
// alone flips ~0.5% of the page choices (each within 0.14% of its rival's score, far inside the
// bf16 error bound), and one flip swaps half of what a head attends to, so the logits move by
// order 1 on the CPU itself when only the scoring inputs are rounded to bf16. Selection at budget
// 32 is checked where it is well defined, layer by layer against the CPU's own inputs with the
// bf16 error bound: QuestModelSelection (quest_model_selection_test.cpp).
attention::AttentionConfig robust_quest_config() {
  attention::AttentionConfig quest = small_quest_config();
  quest.decode.budget = 128;
  return quest;
}

TEST(ModelParity, QuestDecodeEqualsCpuForThirtyTwoTokensOnLongContexts) {
  expect_parity(robust_quest_config(), 32, long_context_prompts());
}

TEST(ModelParity, QuestGpuLogitsFollowCpuOnLongContextsWhenFedTheSameTokens) {
  expect_same_logits_when_fed_the_same_tokens(robust_quest_config(), 32, kBf16LogitTolerance, long_context_prompts());
}

// Qwen2.5-Coder-0.5B (Q4_K_M: Q5_0/Q8_0/Q4_K/Q6_K weights, QKV bias, 14 query / 2 KV heads of
// 64, tied embeddings): $DELTAINFER_QWEN_MODEL or models/ (scripts/fetch-model qwen2.5-coder-0.5b;
// scripts/stage-gpu carries it to the device in parts). Skips when absent.
std::string qwen_model_path() {
  if (const char* path = std::getenv("DELTAINFER_QWEN_MODEL")) return path;
  return std::string(DELTAINFER_SOURCE_DIR) + "/models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf";
}

std::vector<std::string> coding_prompts() {
  return {"<|im_start|>user\nWrite a Python function that reverses a string.<|im_end|>\n<|im_start|>assistant\n",
          "def quicksort(items):\n    \"\"\"Sort a list with quicksort.\"\"\"\n",
          "The capital of France is"};
}

TEST(QwenModelParity, GpuLogitsFollowCpuWhenFedTheSameTokens) {
  expect_same_logits_when_fed_the_same_tokens(attention::AttentionConfig{}, 32, kBf16LogitTolerance, coding_prompts(),
                                              qwen_model_path());
}

TEST(QwenModelParity, GpuGreedyTokensEqualCpuUpToANearTie) {
  expect_parity(attention::AttentionConfig{}, 32, coding_prompts(), qwen_model_path());
}

TEST(QwenModelParity, SparseGpuLogitsFollowCpuWhenFedTheSameTokens) {
  expect_same_logits_when_fed_the_same_tokens(small_sparse_config(), 32, kBf16LogitTolerance, coding_prompts(),
                                              qwen_model_path());
}

TEST(QwenModelParity, VerticalSlashDeltaGpuLogitsFollowCpuOnLongContexts) {
  expect_same_logits_when_fed_the_same_tokens(small_vslash_config(), 16, kBf16LogitTolerance, long_context_prompts(),
                                              qwen_model_path());
}

}  // namespace
}  // namespace deltainfer
