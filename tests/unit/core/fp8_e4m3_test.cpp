// The host e4m3 codec: exact on every code, nearest with ties to even, saturating, NaN for
// non-finite input.
#include "core/fp8_e4m3.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

namespace deltainfer {
namespace {

bool is_nan_code(int code) { return (code & 0x7F) == 0x7F; }

TEST(Fp8E4m3, EveryCodeRoundTrips) {
  for (int code = 0; code < 256; ++code) {
    const float value = fp8_e4m3_decode(static_cast<uint8_t>(code));
    if (is_nan_code(code)) {
      EXPECT_TRUE(std::isnan(value)) << code;
      EXPECT_EQ(fp8_e4m3_encode(value), kFp8E4m3Nan);
    } else {
      EXPECT_EQ(fp8_e4m3_encode(value), code) << value;
    }
  }
}

TEST(Fp8E4m3, KnownValues) {
  EXPECT_EQ(fp8_e4m3_encode(1.0f), 0x38);
  EXPECT_EQ(fp8_e4m3_encode(448.0f), 0x7E);
  EXPECT_EQ(fp8_e4m3_decode(0x7E), 448.0f);
  EXPECT_EQ(fp8_e4m3_decode(0x01), std::ldexp(1.0f, -9));   // smallest subnormal
  EXPECT_EQ(fp8_e4m3_decode(0x08), std::ldexp(1.0f, -6));   // smallest normal
  EXPECT_EQ(fp8_e4m3_encode(-0.0f), 0x80);
  EXPECT_EQ(fp8_e4m3_encode(1.0625f), 0x38);                // tie between 1 and 1.125: even mantissa
  EXPECT_EQ(fp8_e4m3_encode(1.1875f), 0x3A);                // tie between 1.125 and 1.25: even mantissa
  EXPECT_EQ(fp8_e4m3_encode(std::ldexp(1.0f, -10)), 0x00);  // half the smallest subnormal: to zero (even)
  EXPECT_EQ(fp8_e4m3_encode(std::ldexp(1.5f, -10)), 0x01);
  EXPECT_EQ(fp8_e4m3_encode(std::ldexp(1.0f, -30)), 0x00);
}

TEST(Fp8E4m3, SaturatesFiniteAndKeepsNonFiniteNan) {
  EXPECT_EQ(fp8_e4m3_encode(464.0f), 0x7E);
  EXPECT_EQ(fp8_e4m3_encode(1e30f), 0x7E);
  EXPECT_EQ(fp8_e4m3_encode(-1e30f), 0xFE);
  EXPECT_EQ(fp8_e4m3_encode(std::numeric_limits<float>::infinity()), kFp8E4m3Nan);
  EXPECT_EQ(fp8_e4m3_encode(-std::numeric_limits<float>::infinity()), kFp8E4m3Nan);
  EXPECT_EQ(fp8_e4m3_encode(std::numeric_limits<float>::quiet_NaN()), kFp8E4m3Nan);
}

// Against a brute-force search over all codes: the nearest value, and on a tie the even code.
TEST(Fp8E4m3, RoundsToNearestEven) {
  std::mt19937 rng(16);
  std::uniform_real_distribution<float> exponent(-12.0f, 9.5f);
  std::bernoulli_distribution negative(0.5);
  for (int trial = 0; trial < 20000; ++trial) {
    const float magnitude = std::min(std::exp2(exponent(rng)), 448.0f);
    const float x = negative(rng) ? -magnitude : magnitude;
    const uint8_t code = fp8_e4m3_encode(x);
    const float error = std::fabs(fp8_e4m3_decode(code) - x);
    for (int other = 0; other < 256; ++other) {
      if (is_nan_code(other)) continue;
      const float other_error = std::fabs(fp8_e4m3_decode(static_cast<uint8_t>(other)) - x);
      ASSERT_LE(error, other_error) << x << " -> " << int{code} << ", nearer: " << other;
      if (other_error == error && fp8_e4m3_decode(static_cast<uint8_t>(other)) != fp8_e4m3_decode(code)) {
        EXPECT_EQ(code & 1, 0) << "tie at " << x << " broken to an odd code";
      }
    }
    // Half a step of the 3-bit mantissa relative, or half the subnormal step absolute.
    EXPECT_LE(error, std::max(std::ldexp(std::fabs(x), -4), std::ldexp(1.0f, -10))) << x;
  }
}

}  // namespace
}  // namespace deltainfer
