// Our `--fidelity` prefill instrumentation against an independent one: HF transformers (float32,
// same GGUF) with the sliding and sliding+Δ rules written again in PyTorch. On one ~800-token
// passkey prompt, the mean cosine per layer of each policy's attention output against dense
// attention on the same inputs. Fixture: scripts/delta-fidelity-reference --fixture.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <string>
#include <vector>

#include "attention/attention_config.h"
#include "backend/cpu/cpu_transformer.h"
#include "model/model_source.h"
#include "model_test_support.h"

namespace deltainfer {
namespace {

// Both sides are f32 with the same weights; only summation order differs (observed: < 2e-7 at
// 3,000 tokens). Per layer, sliding and sliding+Δ differ by 7e-4 to 5e-2, so 1e-4 tells them apart.
constexpr double kCosineTolerance = 1e-4;

nlohmann::json load_fixture() {
  std::ifstream in(testing::fixture_path("model/smollm2_fidelity.json"));
  EXPECT_TRUE(in.good());
  return nlohmann::json::parse(in);
}

attention::AttentionConfig config_of(const nlohmann::json& method) {
  attention::AttentionConfig config;
  const std::string name = method["prefill"].get<std::string>();
  EXPECT_TRUE(attention::parse_prefill_method(name, config.prefill)) << name;
  config.window = method["window"].get<int64_t>();
  config.sink = method["sink"].get<int64_t>();
  if (config.prefill.delta) {
    config.prefill.gamma = method["gamma"].get<int64_t>();
    config.prefill.dense_tail = method["tail"].get<int64_t>();
  }
  config.instrument = true;
  return config;
}

std::vector<double> prefill_cosines(const model::ModelSource& source, const attention::AttentionConfig& config,
                                    const std::vector<int32_t>& ids) {
  runtime::BackendOptions options;
  options.capacity = static_cast<int64_t>(ids.size()) + 1;
  options.prefill_chunk = 300;  // several chunks: the report must not depend on the chunking
  options.attention = config;
  // The fixture's independent implementation runs the dequantized f32 model: pin the f32 path.
  const testing::ScopedCpuWeights f32("f32");
  backend::cpu::CpuTransformer model(source, options);
  std::vector<float> logits(static_cast<size_t>(source.config().vocab_size));
  model.forward(ids.data(), static_cast<int64_t>(ids.size()), runtime::LogitsFor::LastToken, logits.data());
  const nlohmann::json report = model.attention().fidelity().to_json();  // what `--fidelity` writes
  std::vector<double> cosines;
  for (const nlohmann::json& layer : report["prefill"]) {
    cosines.push_back(layer["cosine_mean"].get<double>());
  }
  return cosines;
}

TEST(FidelityReference, PrefillCosinePerLayerMatchesAnIndependentImplementation) {
  DELTAINFER_REQUIRE_SMOLLM2();
  const nlohmann::json fixture = load_fixture();
  const auto source = model::open_model_source(testing::smollm2_path());
  const std::vector<int32_t> ids = fixture["prompt_ids"].get<std::vector<int32_t>>();
  ASSERT_EQ(fixture["methods"].size(), 2u);
  for (const nlohmann::json& method : fixture["methods"]) {
    const std::vector<double> want = method["prefill_cosine"].get<std::vector<double>>();
    const std::vector<double> got = prefill_cosines(*source, config_of(method), ids);
    ASSERT_EQ(got.size(), want.size());
    for (size_t layer = 0; layer < want.size(); ++layer) {
      EXPECT_NEAR(got[layer], want[layer], kCosineTolerance) << method["prefill"] << " layer " << layer;
    }
  }
}

}  // namespace
}  // namespace deltainfer
