// The AVX2 key-run kernels against their scalar twins on fresh random inputs: head dims of the
// models (64, 128) and odd multiples of 8, run lengths around the 4-key grouping, zero
// probabilities (rejected keys). The variants differ only in the order of the f32 sums:
// tolerance 1e-5 of the sum of |terms| (f32 rounding over <= 128 products, with margin).
#include "attention/key_row_kernels.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "attention_test_support.h"

namespace deltainfer::attention {
namespace {

std::vector<float> random_values(std::mt19937& rng, int64_t count) {
  std::normal_distribution<float> normal(0.0f, 2.0f);
  std::vector<float> values(static_cast<size_t>(count));
  for (float& v : values) v = normal(rng);
  return values;
}

TEST(KeyRowKernels, ScoresMatchTheScalarTwin) {
  std::mt19937 rng(testing::fresh_seed("KeyRowKernels.Scores"));
  for (int64_t d : {8, 24, 64, 72, 128}) {
    for (int64_t count : {1, 3, 4, 5, 8, 63, 64}) {
      const std::vector<float> q = random_values(rng, d), keys = random_values(rng, count * d);
      std::vector<float> got(static_cast<size_t>(count)), want(static_cast<size_t>(count));
      score_key_run(q.data(), keys.data(), count, d, 0.125f, got.data());
      score_key_run_scalar(q.data(), keys.data(), count, d, 0.125f, want.data());
      for (int64_t j = 0; j < count; ++j) {
        double magnitude = 0;
        for (int64_t c = 0; c < d; ++c) magnitude += std::fabs(0.125 * q[c] * keys[j * d + c]);
        ASSERT_NEAR(got[j], want[j], 1e-5 * magnitude + 1e-30) << "d " << d << " count " << count << " key " << j;
      }
    }
  }
}

TEST(KeyRowKernels, AccumulationMatchesTheScalarTwinAndSkipsRejectedKeys) {
  std::mt19937 rng(testing::fresh_seed("KeyRowKernels.Values"));
  std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
  for (int64_t d : {8, 24, 64, 72, 128}) {
    for (int64_t count : {1, 5, 64}) {
      const std::vector<float> values = random_values(rng, count * d);
      std::vector<float> p(static_cast<size_t>(count));
      for (float& x : p) x = uniform(rng) < 0.3f ? 0.0f : uniform(rng);
      std::vector<float> got = random_values(rng, d), want = got;  // both add to the same start
      // A rejected key's value may be anything, even non-finite: it must not enter the sum.
      std::vector<float> poisoned = values;
      for (int64_t j = 0; j < count; ++j) {
        if (p[j] == 0.0f) poisoned[j * d] = std::nanf("");
      }
      accumulate_value_run(p.data(), poisoned.data(), count, d, got.data());
      accumulate_value_run_scalar(p.data(), values.data(), count, d, want.data());
      for (int64_t c = 0; c < d; ++c) {
        double magnitude = std::fabs(want[c]);
        for (int64_t j = 0; j < count; ++j) magnitude += std::fabs(p[j] * values[j * d + c]);
        ASSERT_NEAR(got[c], want[c], 1e-5 * magnitude) << "d " << d << " count " << count << " column " << c;
      }
    }
  }
}

}  // namespace
}  // namespace deltainfer::attention
