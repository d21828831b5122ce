#pragma once
// Shared helpers for the GPU kernel tests: fresh seeds (printed, overridable with
// DELTAINFER_TEST_SEED=N to replay a failure), bf16 rounding on the host, error norms.
#include <cuda_bf16.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <random>
#include <string>
#include <vector>

namespace deltainfer::cuda::test {

inline uint64_t fresh_seed(const std::string& what) {
  uint64_t seed = 0;
  if (const char* fixed = std::getenv("DELTAINFER_TEST_SEED")) {
    seed = std::strtoull(fixed, nullptr, 10);
  } else {
    seed = (static_cast<uint64_t>(std::random_device{}()) << 32) ^ std::random_device{}();
  }
  std::cout << "[seed] " << what << ": DELTAINFER_TEST_SEED=" << seed << "\n";
  return seed;
}

inline float bf16_to_float(__nv_bfloat16 v) { return __bfloat162float(v); }
inline __nv_bfloat16 float_to_bf16(float v) { return __float2bfloat16(v); }
inline float round_bf16(float v) { return bf16_to_float(float_to_bf16(v)); }

// Normal(0, scale) values, already representable in bf16 (so the reference sees what the GPU sees).
inline std::vector<float> random_bf16_values(size_t n, std::mt19937_64& rng, float scale = 1.0f) {
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> values(n);
  for (float& v : values) v = round_bf16(normal(rng));
  return values;
}

inline std::vector<__nv_bfloat16> to_bf16(const std::vector<float>& values) {
  std::vector<__nv_bfloat16> out(values.size());
  for (size_t i = 0; i < values.size(); ++i) out[i] = float_to_bf16(values[i]);
  return out;
}

inline std::vector<float> to_float(const std::vector<__nv_bfloat16>& values) {
  std::vector<float> out(values.size());
  for (size_t i = 0; i < values.size(); ++i) out[i] = bf16_to_float(values[i]);
  return out;
}

// ||got - want|| / ||want||; NaN anywhere in `got` (an unwritten poisoned element) gives +inf.
template <typename Got, typename Want>
double relative_l2(const std::vector<Got>& got, const std::vector<Want>& want) {
  double diff = 0.0, norm = 0.0;
  for (size_t i = 0; i < want.size(); ++i) {
    const double g = static_cast<double>(got[i]);
    if (!std::isfinite(g)) return INFINITY;
    const double w = static_cast<double>(want[i]);
    diff += (g - w) * (g - w);
    norm += w * w;
  }
  return norm > 0.0 ? std::sqrt(diff / norm) : std::sqrt(diff);
}

template <typename Got, typename Want>
double max_abs_error(const std::vector<Got>& got, const std::vector<Want>& want) {
  double worst = 0.0;
  for (size_t i = 0; i < want.size(); ++i) {
    const double g = static_cast<double>(got[i]);
    if (std::isnan(g)) return INFINITY;
    worst = std::max(worst, std::fabs(g - static_cast<double>(want[i])));
  }
  return worst;
}

}  // namespace deltainfer::cuda::test
