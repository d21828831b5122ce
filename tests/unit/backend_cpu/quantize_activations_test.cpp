#include "backend/cpu/quant/quantize_activations.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

namespace deltainfer::backend::cpu::quant {
namespace {

std::vector<float> random_values(int64_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 3.0f);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = dist(rng);
  return v;
}

TEST(QuantizeActivations, Q8RoundsEachElementToTheNearestStep) {
  std::vector<float> x = random_values(96, 1);
  x[40] = 0.0f;
  std::fill(x.begin() + 64, x.end(), 0.0f);  // an all-zero block
  std::vector<Q8Block> blocks(3);
  quantize_row_q8(x.data(), blocks.data(), 96);
  for (int b = 0; b < 3; ++b) {
    int sum = 0;
    for (int i = 0; i < kBlock; ++i) {
      const float value = x[static_cast<size_t>(b * kBlock + i)];
      EXPECT_LE(std::fabs(blocks[b].d * blocks[b].qs[i] - value), blocks[b].d / 2 * 1.0001f) << b << " " << i;
      sum += blocks[b].qs[i];
    }
    EXPECT_FLOAT_EQ(blocks[b].sum, blocks[b].d * static_cast<float>(sum));
  }
  EXPECT_EQ(blocks[2].d, 0.0f);
  int max_q = 0;
  for (int8_t q : blocks[0].qs) max_q = std::max(max_q, std::abs(int{q}));
  EXPECT_EQ(max_q, 127);  // the largest element uses the full range
}

TEST(QuantizeActivations, Q8KFillsSixteenElementSums) {
  const std::vector<float> x = random_values(512, 2);
  std::vector<Q8KBlock> blocks(2);
  quantize_row_q8k(x.data(), blocks.data(), 512);
  for (int b = 0; b < 2; ++b) {
    for (int i = 0; i < kSuperBlock; ++i) {
      const float value = x[static_cast<size_t>(b * kSuperBlock + i)];
      EXPECT_LE(std::fabs(blocks[b].d * blocks[b].qs[i] - value), blocks[b].d / 2 * 1.0001f);
    }
    for (int g = 0; g < kSuperBlock / 16; ++g) {
      int sum = 0;
      for (int i = 0; i < 16; ++i) sum += blocks[b].qs[16 * g + i];
      EXPECT_EQ(blocks[b].bsums[g], sum);
    }
  }
}

}  // namespace
}  // namespace deltainfer::backend::cpu::quant
