// cuBLASLt GEMM against an f64 CPU product of the same bf16 inputs: y = x · W^T.
// Tolerance: rel L2 < 1e-2 for bf16 output, < 1e-4 for f32 output (f32 accumulation).
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "backend/cuda/device_buffer.h"
#include "backend/cuda/gemm.h"
#include "gpu/gpu_test_support.h"

namespace deltainfer::cuda {
namespace {

std::vector<double> reference_matmul(const std::vector<float>& x, const std::vector<float>& w, int m, int n, int k) {
  std::vector<double> y(static_cast<size_t>(m) * n);
  for (int r = 0; r < m; ++r) {
    for (int c = 0; c < n; ++c) {
      double acc = 0.0;
      for (int i = 0; i < k; ++i) acc += static_cast<double>(x[static_cast<size_t>(r) * k + i]) * w[static_cast<size_t>(c) * k + i];
      y[static_cast<size_t>(r) * n + c] = acc;
    }
  }
  return y;
}

TEST(GemmTest, MatchesCpuProduct) {
  std::mt19937_64 rng(test::fresh_seed("gemm"));
  Gemm gemm;
  for (const auto& [m, n, k] : {std::tuple<int, int, int>{1, 1000, 520}, {7, 1000, 520}, {129, 576, 1536}}) {
    const std::vector<float> x = test::random_bf16_values(static_cast<size_t>(m) * k, rng);
    const std::vector<float> w = test::random_bf16_values(static_cast<size_t>(n) * k, rng, 0.05f);
    const std::vector<double> want = reference_matmul(x, w, m, n, k);
    auto d_x = to_device(test::to_bf16(x));
    auto d_w = to_device(test::to_bf16(w));
    DeviceBuffer<__nv_bfloat16> y_bf16(want.size());
    DeviceBuffer<float> y_f32(want.size());
    y_bf16.fill_bytes(0xFF);
    y_f32.fill_bytes(0xFF);
    for (int repeat = 0; repeat < 2; ++repeat) {  // the second call reuses the cached heuristic
      gemm.run(d_x.data(), d_w.data(), y_bf16.data(), m, n, k, nullptr);
      gemm.run(d_x.data(), d_w.data(), y_f32.data(), m, n, k, false, nullptr);
    }
    const double err_bf16 = test::relative_l2(test::to_float(y_bf16.download()), want);
    const double err_f32 = test::relative_l2(y_f32.download(), want);
    std::cout << "m=" << m << " n=" << n << " k=" << k << ": rel L2 bf16 " << err_bf16 << ", f32 " << err_f32 << "\n";
    EXPECT_LT(err_bf16, 1e-2);
    EXPECT_LT(err_f32, 1e-4);

    // y += x · W^T into an f32 residual.
    const std::vector<float> residual = test::random_bf16_values(want.size(), rng);
    auto d_res = to_device(residual);
    gemm.run(d_x.data(), d_w.data(), d_res.data(), m, n, k, true, nullptr);
    std::vector<double> want_sum(want);
    for (size_t i = 0; i < want.size(); ++i) want_sum[i] += residual[i];
    EXPECT_LT(test::relative_l2(d_res.download(), want_sum), 1e-4);
  }
}

}  // namespace
}  // namespace deltainfer::cuda
