#include "attention/fidelity.h"

#include <gtest/gtest.h>

#include "attention/cpu_attention.h"
#include "attention_test_support.h"

namespace deltainfer::attention {
namespace {

using testing::RandomLayer;

TEST(Fidelity, OffByDefault) {
  std::mt19937 rng(testing::fresh_seed("Fidelity.Off"));
  const RandomLayer layer(testing::small_model(), 80, rng);
  CpuAttention attention(AttentionConfig{}, testing::small_model(), 2);
  std::vector<float> out(80 * 96);
  attention.prefill(0, layer.q_row(0), 80, 0, 80, layer.kv(80), out.data());
  EXPECT_EQ(attention.fidelity().at(Phase::Prefill, 0).calls, 0);
}

TEST(Fidelity, DensePolicyHasUnitCosineAndRecall) {
  std::mt19937 rng(testing::fresh_seed("Fidelity.Dense"));
  const RandomLayer layer(testing::small_model(), 80, rng);
  AttentionConfig config;
  config.instrument = true;
  CpuAttention attention(config, testing::small_model(), 2);
  std::vector<float> out(80 * 96);
  attention.prefill(0, layer.q_row(0), 79, 0, 79, layer.kv(79), out.data());
  attention.decode(0, layer.q_row(79), 79, layer.kv(80), out.data());
  const LayerFidelity& prefill = attention.fidelity().at(Phase::Prefill, 0);
  EXPECT_EQ(prefill.attended, prefill.dense_attended);
  EXPECT_EQ(prefill.dense_attended, 6 * 79 * 80 / 2);
  EXPECT_NEAR(prefill.cosine_min, 1.0, 1e-6);
  const LayerFidelity& decode = attention.fidelity().at(Phase::Decode, 0);
  EXPECT_NEAR(decode.recall_min, 1.0, 1e-5);
  EXPECT_EQ(decode.attended, 6 * 80);
}

TEST(Fidelity, SparsePolicyLosesMassAndCosine) {
  std::mt19937 rng(testing::fresh_seed("Fidelity.Sparse"));
  const RandomLayer layer(testing::small_model(), 200, rng);
  AttentionConfig config;
  config.instrument = true;
  config.prefill.kind = PrefillKind::Sliding;
  config.window = 16;
  config.sink = 4;
  config.decode.kind = DecodeKind::Streaming;
  CpuAttention attention(config, testing::small_model(), 2);
  std::vector<float> out(200 * 96);
  attention.prefill(0, layer.q_row(0), 199, 0, 199, layer.kv(199), out.data());
  attention.decode(0, layer.q_row(199), 199, layer.kv(200), out.data());
  const LayerFidelity& prefill = attention.fidelity().at(Phase::Prefill, 0);
  EXPECT_LT(prefill.attended, prefill.dense_attended);
  EXPECT_LT(prefill.cosine_min, 0.999);
  const LayerFidelity& decode = attention.fidelity().at(Phase::Decode, 0);
  EXPECT_GT(decode.recall_min, 0.0);
  EXPECT_LT(decode.recall_min, 1.0);
  const nlohmann::json json = attention.fidelity().to_json();
  ASSERT_EQ(json["prefill"].size(), 6u);
  EXPECT_EQ(json["decode"][0]["attended_per_query_head"].get<double>(), 20.0);
  EXPECT_TRUE(json["decode"][0].contains("recall_mean"));
  EXPECT_NE(json["policy"].get<std::string>().find("streaming"), std::string::npos);
}

TEST(Fidelity, CosineOfEqualAndOppositeVectors) {
  const float a[] = {1, 2, 3}, b[] = {-1, -2, -3}, zero[] = {0, 0, 0};
  EXPECT_NEAR(cosine_similarity(a, a, 3), 1.0, 1e-12);
  EXPECT_NEAR(cosine_similarity(a, b, 3), -1.0, 1e-12);
  EXPECT_EQ(cosine_similarity(zero, zero, 3), 1.0);
}

}  // namespace
}  // namespace deltainfer::attention
