// core/vector_math against std::exp (computed in double) over the whole f32 range of exp and its
// edges: relative error below 2.5e-7 (the header's contract; ~2 ulp), exactly 0 below -87.34 and
// for -inf, +inf above 88.72, NaN kept. Every length from 0 to 40 so that the 8-lane body and the
// padded tail are both covered, at every offset.
#include "core/vector_math.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

namespace deltainfer {
namespace {

constexpr double kRelativeTolerance = 2.5e-7;
constexpr float kInf = std::numeric_limits<float>::infinity();

void expect_exp(float input, float got) {
  if (std::isnan(input)) {
    EXPECT_TRUE(std::isnan(got)) << input;
  } else if (input < -87.34f) {
    EXPECT_EQ(got, 0.0f) << input;
  } else if (input > 88.73f) {
    EXPECT_EQ(got, kInf) << input;
  } else if (input > -87.33f && input < 88.72f) {
    const double want = std::exp(static_cast<double>(input));
    ASSERT_LE(std::fabs(got - want), kRelativeTolerance * want) << "exp(" << input << ")";
  }
}

TEST(VectorMath, ExpIsWithinTwoUlpOverItsRangeAndExactAtTheEdges) {
  std::vector<float> inputs;
  for (float x = -100.0f; x < 100.0f; x += 0.0013f) inputs.push_back(x);
  for (float edge : {-kInf, kInf, std::nanf(""), -87.3365f, -87.33f, 88.72f, 88.7228f, 0.0f, -0.0f, 1e-30f}) {
    inputs.push_back(edge);
  }
  std::vector<float> values = inputs;
  exp_shifted_in_place(values.data(), static_cast<int64_t>(values.size()), 0.0f);
  for (size_t i = 0; i < inputs.size(); ++i) expect_exp(inputs[i], values[i]);
}

TEST(VectorMath, ShiftAndSumMatchTheScalarTwinAtEveryLength) {
  std::mt19937 rng(std::random_device{}());
  std::normal_distribution<float> normal(0.0f, 4.0f);
  for (int64_t n = 0; n <= 40; ++n) {
    std::vector<float> x(static_cast<size_t>(n));
    for (float& v : x) v = normal(rng);
    if (n > 2) x[1] = -kInf;  // a rejected key
    std::vector<float> want = x;
    const double sum = exp_shifted_in_place(x.data(), n, 3.0f);
    const double want_sum = exp_shifted_in_place_scalar(want.data(), n, 3.0f);
    EXPECT_NEAR(sum, want_sum, 1e-6 * want_sum) << n;
    for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(x[i], want[i], kRelativeTolerance * want[i]) << n << " " << i;
    if (n > 2) {
      EXPECT_EQ(x[1], 0.0f);
    }
  }
}

TEST(VectorMath, SiluMultiplyMatchesTheScalarTwin) {
  std::mt19937 rng(std::random_device{}());
  std::normal_distribution<float> normal(0.0f, 30.0f);
  for (int64_t n = 0; n <= 40; ++n) {
    std::vector<float> gate(static_cast<size_t>(n)), up(static_cast<size_t>(n));
    for (float& v : gate) v = normal(rng);
    for (float& v : up) v = normal(rng);
    if (n > 3) gate[2] = -200.0f;  // exp(200) overflows: silu is -0
    std::vector<float> want = gate;
    silu_multiply(gate.data(), up.data(), n);
    silu_multiply_scalar(want.data(), up.data(), n);
    for (int64_t i = 0; i < n; ++i) {
      EXPECT_NEAR(gate[i], want[i], 4 * kRelativeTolerance * std::fabs(want[i]) + 1e-30) << n << " " << i;
    }
  }
}

}  // namespace
}  // namespace deltainfer
