// The cosine statistics of --fidelity on the GPU (fidelity_cosine.h) against their CPU twin, the
// CPU fidelity's own definition: attention::cosine_similarity per (row, head) pair, summed and
// min'd from the accumulator's values. Adversarial inputs: zero vectors (both, one), opposite and
// equal vectors, magnitudes from 1e-30 to 1e30 (f32 squares would underflow or overflow; f64
// does not), head dims that are not multiples of 32, more pairs than the partial pass has warps.
// Tolerances: each pair's cosine is computed in f64 from exact bf16 products on both sides, so
// the minimum agrees to 1e-12 and the sum to 1e-13 per pair plus 1e-12 relative (summation
// order only; a wrong pair, a lost block or f32 accumulation is off by far more).
#include <cuda_bf16.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "attention/fidelity.h"
#include "backend/cuda/device_buffer.h"
#include "backend/cuda/fidelity_cosine.h"
#include "core/error.h"
#include "gpu_test_support.h"

namespace deltainfer::cuda {
namespace {

struct Case {
  std::string name;
  int64_t pairs;
  int head_dim;
};

// Pair p of `a` and `b` is made adversarial by its index: zero, opposite, equal, tiny or huge.
void make_adversarial(std::vector<float>& a, std::vector<float>& b, int64_t pairs, int head_dim, std::mt19937_64& rng) {
  std::uniform_int_distribution<int> kind(0, 9);
  for (int64_t p = 0; p < pairs; ++p) {
    float* x = a.data() + p * head_dim;
    float* y = b.data() + p * head_dim;
    switch (kind(rng)) {
      case 0: std::fill(x, x + head_dim, 0.0f); std::fill(y, y + head_dim, 0.0f); break;  // cosine 1
      case 1: std::fill(x, x + head_dim, 0.0f); break;                                     // cosine 0
      case 2: for (int e = 0; e < head_dim; ++e) y[e] = -x[e]; break;                      // cosine -1
      case 3: std::copy(x, x + head_dim, y); break;                                         // cosine 1
      case 4: for (int e = 0; e < head_dim; ++e) { x[e] = test::round_bf16(x[e] * 1e30f); y[e] = test::round_bf16(y[e] * 1e-30f); } break;
      default: break;  // independent normals
    }
  }
}

class FidelityCosineTest : public ::testing::TestWithParam<Case> {};

TEST_P(FidelityCosineTest, MatchesTheCpuDefinition) {
  const Case& c = GetParam();
  std::mt19937_64 rng(test::fresh_seed("FidelityCosine." + c.name));
  const size_t n = static_cast<size_t>(c.pairs * c.head_dim);
  std::vector<float> a = test::random_bf16_values(n, rng), b = test::random_bf16_values(n, rng);
  make_adversarial(a, b, c.pairs, c.head_dim, rng);

  // The twin, starting from a used accumulator: sum 7.25, minimum 0.5 (a previous chunk's).
  double want_sum = 7.25, want_min = 0.5;
  for (int64_t p = 0; p < c.pairs; ++p) {
    const double cosine = attention::cosine_similarity(a.data() + p * c.head_dim, b.data() + p * c.head_dim, c.head_dim);
    want_sum += cosine;
    want_min = std::min(want_min, cosine);
  }

  DeviceBuffer<__nv_bfloat16> d_a = to_device(test::to_bf16(a)), d_b = to_device(test::to_bf16(b));
  DeviceBuffer<double> accumulator = to_device(std::vector<double>{7.25, 0.5});
  DeviceBuffer<double> workspace(static_cast<size_t>(kCosineStatsWorkspaceDoubles));
  workspace.fill_bytes(0xFF);  // NaN: a partial the fold reads but no block wrote would show
  CosineStatsArgs args;
  args.a = d_a.data();
  args.b = d_b.data();
  args.pairs = c.pairs;
  args.head_dim = c.head_dim;
  args.accumulator = accumulator.data();
  args.workspace = workspace.data();
  accumulate_cosine_stats(args, nullptr);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  const std::vector<double> got = accumulator.download();
  EXPECT_NEAR(got[0], want_sum, 1e-13 * static_cast<double>(c.pairs) + 1e-12 * std::fabs(want_sum)) << c.name;
  EXPECT_NEAR(got[1], want_min, 1e-12) << c.name;
}

INSTANTIATE_TEST_SUITE_P(Shapes, FidelityCosineTest,
                         ::testing::Values(Case{"one_pair_d64", 1, 64}, Case{"few_pairs_d128", 37, 128},
                                           Case{"odd_head_dim", 1000, 37}, Case{"head_dim_1", 513, 1},
                                           Case{"grid_stride_d64", 20000, 64},
                                           Case{"grid_stride_d128", 9 * 4096 + 5, 128}),
                         [](const ::testing::TestParamInfo<Case>& info) { return info.param.name; });

TEST(FidelityCosine, NoPairsLeavesTheAccumulator) {
  DeviceBuffer<double> accumulator = to_device(std::vector<double>{3.0, 0.25});
  DeviceBuffer<double> workspace(static_cast<size_t>(kCosineStatsWorkspaceDoubles));
  CosineStatsArgs args;
  args.pairs = 0;
  args.head_dim = 64;
  args.accumulator = accumulator.data();
  args.workspace = workspace.data();
  accumulate_cosine_stats(args, nullptr);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  EXPECT_EQ(accumulator.download(), (std::vector<double>{3.0, 0.25}));
}

TEST(FidelityCosine, RefusesBadArguments) {
  CosineStatsArgs args;
  args.pairs = 4;
  args.head_dim = 0;
  EXPECT_THROW(accumulate_cosine_stats(args, nullptr), InputError);
  args.head_dim = 64;  // pointers still null
  EXPECT_THROW(accumulate_cosine_stats(args, nullptr), InputError);
}

}  // namespace
}  // namespace deltainfer::cuda
