// Our CPU forward pass against HF transformers (float32, same GGUF) on each packaged model: top-20
// logits at the last 8 positions of 3 prompts, and 32 greedy tokens; and our tokenizer against the
// prompt ids transformers made. Fixtures: scripts/gen-golden-logits MODEL.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <string>

#include "backend/cpu/cpu_transformer.h"
#include "engine/sampler.h"
#include "model/model_source.h"
#include "model_test_support.h"
#include "tokenizer/tokenizer.h"

namespace deltainfer {
namespace {

// Both sides compute in f32 from identical dequantized weights; only summation order differs.
// Logits here span about ±30; a wrong RoPE pairing, norm epsilon or GQA mapping moves them by > 1.
constexpr double kLogitTolerance = 1e-3;  // observed: < 4e-5 (SmolLM2), < 3e-5 (Qwen2.5-Coder)

struct GoldenModel {
  const char* test_name;
  const char* name;     // scripts/fetch-model NAME installs it
  const char* file;     // in models/
  const char* fixture;  // in tests/fixtures/model/
};

// What gtest (and so ctest's test list) prints for the parameter.
void PrintTo(const GoldenModel& model, std::ostream* out) { *out << model.name; }

const GoldenModel kModels[] = {
    {"SmolLM2", "smollm2-135m", "SmolLM2-135M-Instruct.Q4_1.gguf", "smollm2_golden.json"},
    {"Qwen25Coder", "qwen2.5-coder-0.5b", "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf", "qwen2.5-coder-0.5b_golden.json"},
};

class GoldenLogits : public ::testing::TestWithParam<GoldenModel> {
 protected:
  void SetUp() override {
    path_ = std::string(DELTAINFER_SOURCE_DIR) + "/models/" + GetParam().file;
    if (!std::filesystem::exists(path_)) {
      GTEST_SKIP() << "model absent: " << path_ << " (run scripts/fetch-model " << GetParam().name << ")";
    }
    std::ifstream in(testing::fixture_path(std::string("model/") + GetParam().fixture));
    ASSERT_TRUE(in.good()) << GetParam().fixture;
    fixture_ = nlohmann::json::parse(in);
    ASSERT_EQ(fixture_["model"].get<std::string>(), GetParam().file);
  }

  std::unique_ptr<backend::cpu::CpuTransformer> make_model(const model::ModelSource& source) const {
    // The f32 reference path: HF transformers computes in f32, and 8-bit activations (the native
    // default) move logits by ~1 (quantized_weights_test.cpp checks that path against this one).
    const testing::ScopedCpuWeights f32("f32");
    runtime::BackendOptions options;
    options.capacity = 512;
    options.prefill_chunk = 7;  // several chunks per prompt: chunked prefill must not change results
    return std::make_unique<backend::cpu::CpuTransformer>(source, options);
  }

  std::string path_;
  nlohmann::json fixture_;
};

TEST_P(GoldenLogits, TopLogitsMatchTransformers) {
  const auto source = model::open_model_source(path_);
  auto model = make_model(*source);
  const int64_t vocab = source->config().vocab_size;
  for (const auto& c : fixture_["cases"]) {
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

TEST_P(GoldenLogits, GreedyTokensMatchTransformers) {
  const auto source = model::open_model_source(path_);
  auto model = make_model(*source);
  const int32_t vocab = source->config().vocab_size;
  std::vector<float> logits(static_cast<size_t>(vocab));
  for (const auto& c : fixture_["cases"]) {
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

// transformers tokenized the prompts with the GGUF's own vocabulary (special tokens parsed).
TEST_P(GoldenLogits, PromptIdsMatchTransformersTokenizer) {
  const tokenizer::Tokenizer tok = tokenizer::Tokenizer::load(path_);
  for (const auto& c : fixture_["cases"]) {
    EXPECT_EQ(tok.encode(c["text"].get<std::string>()), c["ids"].get<std::vector<int32_t>>()) << "prompt " << c["text"];
  }
}

INSTANTIATE_TEST_SUITE_P(PackagedModels, GoldenLogits, ::testing::ValuesIn(kModels),
                         [](const ::testing::TestParamInfo<GoldenModel>& model) { return model.param.test_name; });

}  // namespace
}  // namespace deltainfer
