#include "backend/cpu/ops.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

namespace deltainfer::backend::cpu {
namespace {

std::vector<float> random_vector(size_t n, std::mt19937& rng) {
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

TEST(Ops, MatmulMatchesNaiveLoopWithBias) {
  const unsigned seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  for (int64_t n : {1, 5}) {
    const int64_t in = 37, out = 23;
    auto x = random_vector(static_cast<size_t>(n * in), rng);
    auto w = random_vector(static_cast<size_t>(out * in), rng);
    auto b = random_vector(static_cast<size_t>(out), rng);
    std::vector<float> y(static_cast<size_t>(n * out));
    matmul(x.data(), w.data(), b.data(), y.data(), n, in, out);
    for (int64_t r = 0; r < n; ++r) {
      for (int64_t o = 0; o < out; ++o) {
        double expected = b[static_cast<size_t>(o)];
        for (int64_t i = 0; i < in; ++i) expected += double{x[static_cast<size_t>(r * in + i)]} * w[static_cast<size_t>(o * in + i)];
        EXPECT_NEAR(y[static_cast<size_t>(r * out + o)], expected, 1e-4);  // f32, 37-term dot products
      }
    }
  }
}

TEST(Ops, RmsnormGivesUnitRmsTimesGain) {
  std::vector<float> x{1.0f, -2.0f, 3.0f, -4.0f};
  std::vector<float> gain{1.0f, 2.0f, 1.0f, 0.5f};
  std::vector<float> y(4);
  rmsnorm(x.data(), gain.data(), y.data(), 1, 4, 0.0f);
  const float rms = std::sqrt((1.0f + 4.0f + 9.0f + 16.0f) / 4.0f);
  for (size_t i = 0; i < 4; ++i) EXPECT_NEAR(y[i], x[i] / rms * gain[i], 1e-6);
}

TEST(Ops, RopeStylesRotateTheirOwnPairs) {
  model::ModelConfig config;
  config.head_dim = 4;
  config.rope_theta = 10000.0f;
  std::vector<float> inv_freq(2);
  rope_inverse_frequencies(config, inv_freq.data());
  EXPECT_FLOAT_EQ(inv_freq[0], 1.0f);
  EXPECT_NEAR(inv_freq[1], 0.01f, 1e-7);

  const float angle = 3.0f;  // position 3, frequency 1
  std::vector<float> interleaved{1.0f, 0.0f, 0.0f, 0.0f};
  apply_rope(interleaved.data(), 1, 1, 4, 3, inv_freq.data(), model::RopeStyle::Interleaved);
  EXPECT_NEAR(interleaved[0], std::cos(angle), 1e-6);
  EXPECT_NEAR(interleaved[1], std::sin(angle), 1e-6);  // pair (0, 1)

  std::vector<float> half_split{1.0f, 0.0f, 0.0f, 0.0f};
  apply_rope(half_split.data(), 1, 1, 4, 3, inv_freq.data(), model::RopeStyle::HalfSplit);
  EXPECT_NEAR(half_split[0], std::cos(angle), 1e-6);
  EXPECT_NEAR(half_split[2], std::sin(angle), 1e-6);  // pair (0, 2)
  EXPECT_FLOAT_EQ(half_split[1], 0.0f);
}

TEST(Ops, RopePreservesNormsAndRelativePositions) {
  // q·k after RoPE depends only on the distance between positions.
  model::ModelConfig config;
  config.head_dim = 64;
  config.rope_theta = 500000.0f;
  std::vector<float> inv_freq(32);
  rope_inverse_frequencies(config, inv_freq.data());
  std::mt19937 rng(5);
  const auto q = random_vector(64, rng), k = random_vector(64, rng);
  auto dot_at = [&](int64_t pq, int64_t pk) {
    auto a = q, b = k;
    apply_rope(a.data(), 1, 1, 64, pq, inv_freq.data(), model::RopeStyle::HalfSplit);
    apply_rope(b.data(), 1, 1, 64, pk, inv_freq.data(), model::RopeStyle::HalfSplit);
    double d = 0;
    for (size_t i = 0; i < 64; ++i) d += double{a[i]} * b[i];
    return d;
  };
  EXPECT_NEAR(dot_at(10, 3), dot_at(1007, 1000), 1e-3);
}

TEST(Ops, Llama3ScalingMatchesTheReferenceFormula) {
  // Values from HF's _compute_llama3_parameters for Llama 3.1 (theta 500000, factor 8, low 1,
  // high 4, original 8192, head_dim 128): high frequencies unchanged, low ones divided by 8.
  model::ModelConfig config;
  config.head_dim = 128;
  config.rope_theta = 500000.0f;
  config.rope_scaling = {8.0f, 1.0f, 4.0f, 8192};
  std::vector<float> inv_freq(64);
  rope_inverse_frequencies(config, inv_freq.data());
  EXPECT_FLOAT_EQ(inv_freq[0], 1.0f);
  const double unscaled_last = std::pow(500000.0, -126.0 / 128.0);
  EXPECT_NEAR(inv_freq[63], unscaled_last / 8.0, unscaled_last * 1e-5);
  // A mid band element is blended: strictly between the scaled and unscaled frequency.
  for (int i = 0; i < 64; ++i) {
    const double unscaled = std::pow(500000.0, -2.0 * i / 128.0);
    EXPECT_LE(inv_freq[static_cast<size_t>(i)], unscaled * (1 + 1e-6));
    EXPECT_GE(inv_freq[static_cast<size_t>(i)], unscaled / 8.0 * (1 - 1e-6));
  }
}

TEST(Ops, SwigluIsSiluTimesUp) {
  std::vector<float> gate{-2.0f, 0.0f, 1.5f};
  const std::vector<float> up{3.0f, 4.0f, -1.0f};
  const auto expected = [](float g, float u) { return g / (1.0f + std::exp(-g)) * u; };
  const std::vector<float> want{expected(-2.0f, 3.0f), 0.0f, expected(1.5f, -1.0f)};
  swiglu(gate.data(), up.data(), 3);
  for (size_t i = 0; i < 3; ++i) EXPECT_NEAR(gate[i], want[i], 1e-6);
}

}  // namespace
}  // namespace deltainfer::backend::cpu
