// `--fidelity` on the GPU against the CPU's on SmolLM2 (skips without the model, as the other
// SmolLM2 GPU tests): a ~1,600-token prompt prefilled in chunks of 512 under dense, sliding
// (window 256, sink 16), sliding+Δ (γ 64, dense tail 128) and its recompute ablation; per layer
// the two reports must agree.
//   - counts (calls, (row, head) pairs, attended and dense keys per pair): exactly; the GPU counts
//     them on the host by the CPU policies' rules.
//   - cosine_mean: within 2e-3 + 0.15 (1 - cosine_cpu). The GPU runs the model in bf16, the CPU in
//     f32: each layer's q, k, v differ by ~1% (logits by 3-7% relative L2, model_parity_test), and
//     the share of a row's attention that a sliding window misses moves with them by a small
//     fraction of itself; bf16 rounding of the two outputs adds ~1e-5 to 1 - cosine.
//   - dense: the GPU's method output and its dense reference are the same kernel on the same
//     inputs, so every cosine is 1 (to 1e-9); sliding must lose some (mean over layers < 0.9999).
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "attention/attention_config.h"
#include "backend/cpu/cpu_transformer.h"
#include "backend/cuda/cuda_transformer.h"
#include "core/error.h"
#include "gpu/model_fixtures.h"
#include "model/model_source.h"
#include "support/scoped_cpu_weights.h"
#include "tokenizer/tokenizer.h"

namespace deltainfer {
namespace {

constexpr double kCosineAbsolute = 2e-3;
constexpr double kCosineOfLoss = 0.15;

struct Method {
  std::string name;
  attention::AttentionConfig config;
};

std::vector<Method> methods() {
  attention::AttentionConfig dense;
  dense.instrument = true;
  attention::AttentionConfig sliding = dense;
  sliding.prefill.kind = attention::PrefillKind::Sliding;
  sliding.window = 256;
  sliding.sink = 16;
  attention::AttentionConfig delta = sliding;
  delta.prefill.delta = true;
  delta.prefill.gamma = 64;
  delta.prefill.dense_tail = 128;
  attention::AttentionConfig recompute = delta;
  recompute.prefill.variant = attention::DeltaVariant::Recompute;
  return {{"dense", dense}, {"sliding", sliding}, {"sliding+delta", delta}, {"recompute", recompute}};
}

// Five copies of the long context and a question: ~1,600 SmolLM2 tokens.
std::vector<int32_t> long_prompt(const std::string& path) {
  std::string text;
  for (int i = 0; i < 5; ++i) text += model_fixtures::kLongContext;
  text += "Question: who keeps the mill museum, and what happened in 1921? Answer:";
  return tokenizer::Tokenizer::load(path).encode(text);
}

nlohmann::json prefill_report(runtime::Transformer& model, const std::vector<int32_t>& prompt) {
  std::vector<float> logits(static_cast<size_t>(model.config().vocab_size));
  model.forward(prompt.data(), static_cast<int64_t>(prompt.size()), runtime::LogitsFor::LastToken, logits.data());
  const std::optional<nlohmann::json> report = model.attention_fidelity();
  EXPECT_TRUE(report.has_value());
  return report.value_or(nlohmann::json::object());
}

TEST(CudaFidelity, PrefillReportMatchesTheCpuPerLayer) {
  const std::string path = model_fixtures::model_path();
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "no model at " << path << " (set DELTAINFER_MODEL)";
  const auto source = model::open_model_source(path);
  const std::vector<int32_t> prompt = long_prompt(path);
  ASSERT_GT(prompt.size(), 1200u);
  std::cout << "    prompt: " << prompt.size() << " tokens\n";
  for (const Method& method : methods()) {
    runtime::BackendOptions options;
    options.capacity = static_cast<int64_t>(prompt.size()) + 1;
    options.prefill_chunk = 512;
    options.attention = method.config;
    nlohmann::json cpu_report, gpu_report;
    {
      const testing::ScopedCpuWeights f32("f32");  // the f32 reference path
      backend::cpu::CpuTransformer cpu(*source, options);
      cpu_report = prefill_report(cpu, prompt);
    }
    {
      const std::unique_ptr<runtime::Transformer> gpu = cuda::make_cuda_transformer(*source, options);
      gpu_report = prefill_report(*gpu, prompt);
    }
    ASSERT_EQ(gpu_report["backend"], "cuda");
    const nlohmann::json& cpu_layers = cpu_report["prefill"];
    const nlohmann::json& gpu_layers = gpu_report["prefill"];
    ASSERT_EQ(cpu_layers.size(), gpu_layers.size());
    double gpu_mean = 0, worst_margin = 0;
    std::cout << "    " << method.name << ": layer cpu_cosine gpu_cosine gpu_min attended/pair\n";
    for (size_t layer = 0; layer < cpu_layers.size(); ++layer) {
      const nlohmann::json& c = cpu_layers[layer];
      const nlohmann::json& g = gpu_layers[layer];
      for (const char* count : {"calls", "query_heads"}) {
        EXPECT_EQ(g[count].get<int64_t>(), c[count].get<int64_t>()) << method.name << " layer " << layer << " " << count;
      }
      for (const char* count : {"attended_per_query_head", "dense_per_query_head", "density"}) {
        EXPECT_EQ(g[count].get<double>(), c[count].get<double>()) << method.name << " layer " << layer << " " << count;
      }
      const double want = c["cosine_mean"].get<double>(), got = g["cosine_mean"].get<double>();
      const double bound = kCosineAbsolute + kCosineOfLoss * (1.0 - want);
      EXPECT_NEAR(got, want, bound) << method.name << " layer " << layer;
      EXPECT_LE(g["cosine_min"].get<double>(), got + 1e-12);
      worst_margin = std::max(worst_margin, std::fabs(got - want) / bound);
      gpu_mean += got / static_cast<double>(gpu_layers.size());
      std::cout << "      " << layer << " " << want << " " << got << " " << g["cosine_min"].get<double>() << " "
                << g["attended_per_query_head"].get<double>() << "\n";
      if (method.name == "dense") {
        EXPECT_NEAR(got, 1.0, 1e-9) << "layer " << layer;
        EXPECT_NEAR(g["cosine_min"].get<double>(), 1.0, 1e-9) << "layer " << layer;
      }
    }
    std::cout << "    " << method.name << ": mean GPU cosine " << gpu_mean << ", worst |gpu - cpu| / bound "
              << worst_margin << "\n";
    if (method.name == "sliding") {
      EXPECT_LT(gpu_mean, 0.9999) << "the window must drop keys on this prompt";
    }
  }
}

TEST(CudaFidelity, RefusesWhatItCannotCount) {
  const std::string path = model_fixtures::model_path();
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "no model at " << path << " (set DELTAINFER_MODEL)";
  const auto source = model::open_model_source(path);
  runtime::BackendOptions options;
  options.capacity = 256;
  options.attention.instrument = true;
  options.attention.prefill.kind = attention::PrefillKind::VerticalSlash;
  EXPECT_THROW(cuda::make_cuda_transformer(*source, options), InputError);
  // Instrumentation belongs to the default sequence: another sequence may not ask for it.
  options.attention = attention::AttentionConfig{};
  const std::unique_ptr<runtime::Transformer> gpu = cuda::make_cuda_transformer(*source, options);
  EXPECT_FALSE(gpu->attention_fidelity().has_value());
  attention::AttentionConfig instrumented;
  instrumented.instrument = true;
  EXPECT_THROW(gpu->open_sequence(instrumented), InputError);
}

}  // namespace
}  // namespace deltainfer
