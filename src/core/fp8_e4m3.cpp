#include "core/fp8_e4m3.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>

namespace deltainfer {
namespace {

constexpr int kMantissaBits = 3;
constexpr int kExponentBias = 7;
constexpr int kMinNormalExponent = -6;  // 2^-6, the smallest normal value
constexpr uint8_t kSignBit = 0x80;

float decode_arithmetic(uint8_t code) {
  const int exponent_field = (code >> kMantissaBits) & 0xF;
  const int mantissa = code & 0x7;
  if ((code & 0x7F) == kFp8E4m3Nan) return std::numeric_limits<float>::quiet_NaN();
  const float magnitude =
      exponent_field == 0
          ? std::ldexp(static_cast<float>(mantissa), kMinNormalExponent - kMantissaBits)
          : std::ldexp(1.0f + static_cast<float>(mantissa) / 8.0f, exponent_field - kExponentBias);
  return (code & kSignBit) ? -magnitude : magnitude;
}

// All 256 codes decoded once: decoding is a table read, as cheap as the GPU's.
const std::array<float, 256>& decode_table() {
  static const std::array<float, 256> table = [] {
    std::array<float, 256> values{};
    for (int code = 0; code < 256; ++code) values[static_cast<size_t>(code)] = decode_arithmetic(static_cast<uint8_t>(code));
    return values;
  }();
  return table;
}

// The bits of a magnitude that is already a representable e4m3 value in (0, 448].
uint8_t bits_of_representable(float magnitude) {
  int exponent = 0;
  const float fraction = std::frexp(magnitude, &exponent);  // magnitude = fraction * 2^exponent, fraction in [0.5, 1)
  const int unbiased = exponent - 1;
  if (unbiased < kMinNormalExponent) {
    return static_cast<uint8_t>(std::ldexp(magnitude, kMantissaBits - kMinNormalExponent));  // k * 2^-9
  }
  const int mantissa = static_cast<int>(std::ldexp(fraction * 2.0f - 1.0f, kMantissaBits));
  return static_cast<uint8_t>(((unbiased + kExponentBias) << kMantissaBits) | mantissa);
}

}  // namespace

uint8_t fp8_e4m3_encode(float value) {
  if (!std::isfinite(value)) return kFp8E4m3Nan;
  const uint8_t sign = std::signbit(value) ? kSignBit : 0;
  const float magnitude = std::fabs(value);
  if (magnitude == 0.0f) return sign;
  // The spacing of e4m3 values around `magnitude`: 2^(e-3) in binade e, 2^-9 among subnormals.
  // Dividing by a power of two is exact, so nearbyint's ties-to-even is the format's rounding.
  int exponent = 0;
  std::frexp(magnitude, &exponent);  // exact, unlike floor(log2()) next to a power of two
  const int binade = std::max(exponent - 1, kMinNormalExponent);
  const int spacing_exponent = binade - kMantissaBits;
  const float rounded =
      std::ldexp(std::nearbyint(std::ldexp(magnitude, -spacing_exponent)), spacing_exponent);
  if (rounded == 0.0f) return sign;
  return static_cast<uint8_t>(sign | bits_of_representable(std::min(rounded, kFp8E4m3Max)));
}

float fp8_e4m3_decode(uint8_t code) { return decode_table()[code]; }

}  // namespace deltainfer
