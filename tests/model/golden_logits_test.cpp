// Our CPU forward pass against HF transformers (float32, same GGUF) on SmolLM2: top-20 logits at the
// last 8 positions of 3 prompts, and 32 greedy tokens. Fixture: scripts/gen-golden-logits.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>

#include "backend/cpu/cpu_transformer.h"
#include "engine/sampler.h"
#include "model/model_source.h"
#include "model_test_support.h"

namespace deltainfer {
namespace {

// Both sides compute in f32 from identical dequantized weights; only summation order differs.
// Logits here span about ±30; a wrong RoPE pairing, norm epsilon or GQA mapping moves them by > 1.
constexpr double kLogitTolerance = 1e-3;  // observed: < 4e-5

nlohmann::json load_fixture() {
  std::ifstream in(testing::fixture_path("model/smollm2_golden.json"));
  EXPECT_TRUE(in.good());
  return nlohmann::json::parse(in);
}

std::unique_ptr<backend::cpu::CpuTransformer> make_model(const model::ModelSource& source) {
  runtime::BackendOptions options;
  options.capacity = 512;
  options.prefill_chunk = 7;  // several chunks per prompt: chunked prefill must not change results
  return std::make_unique<backend::cpu::CpuTransformer>(source, options);
}

TEST(GoldenLogits, TopLogitsMatchTransformers) {
  DELTAINFER_REQUIRE_SMOLLM2();
  const nlohmann::json fixture = load_fixture();
  const auto source = model::open_model_source(testing::smollm2_path());
  auto model = make_model(*source);
  const int64_t vocab = source->config().vocab_size;
  for (const auto& c : fixture["cases"]) {
    const std::vector<int32_t> ids = c["ids"].get<std::vector<int32_t>>();
    std::vector<float> logits(ids.size() * static_cast<size_t>(vocab));
    model->truncate(0);
    model->forward(ids.data(), static_cast<int64_t>(ids.size()), runtime::LogitsFor::AllTokens, logits.data());
    double worst = 0.0;
    for (size_t p = 0; p < c["positions"].size(); ++p) {
      const int64_t position = c["positions"][p].get<int64_t>();
      const float* row = logits.data() + position * vocab;
      for (size_t k = 0; k < c["top_ids"][p].size(); ++k) {
        const int64_t id = c["top_ids"][p][k].get<int64_t>();
        const double expected = c["top_logits"][p][k].get<double>();
        worst = std::max(worst, std::abs(row[id] - expected));
        EXPECT_NEAR(row[id], expected, kLogitTolerance) << "prompt " << c["text"] << " position " << position
                                                        << " token " << id;
      }
      EXPECT_EQ(engine::argmax(row, static_cast<int32_t>(vocab)), c["top_ids"][p][0].get<int32_t>());
    }
    std::cout << "max |logit - reference| = " << worst << " for " << c["text"].dump().substr(0, 30) << "\n";
  }
}

TEST(GoldenLogits, GreedyTokensMatchTransformers) {
  DELTAINFER_REQUIRE_SMOLLM2();
  const nlohmann::json fixture = load_fixture();
  const auto source = model::open_model_source(testing::smollm2_path());
  auto model = make_model(*source);
  const int32_t vocab = source->config().vocab_size;
  std::vector<float> logits(static_cast<size_t>(vocab));
  for (const auto& c : fixture["cases"]) {
    const std::vector<int32_t> ids = c["ids"].get<std::vector<int32_t>>();
    const std::vector<int32_t> expected = c["greedy"].get<std::vector<int32_t>>();
    model->truncate(0);
    model->forward(ids.data(), static_cast<int64_t>(ids.size()), runtime::LogitsFor::LastToken, logits.data());
    std::vector<int32_t> generated;
    for (size_t i = 0; i < expected.size(); ++i) {
      int32_t token = engine::argmax(logits.data(), vocab);
      generated.push_back(token);
      model->forward(&token, 1, runtime::LogitsFor::LastToken, logits.data());
    }
    EXPECT_EQ(generated, expected) << "prompt " << c["text"];
  }
}

}  // namespace
}  // namespace deltainfer
