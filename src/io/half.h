#pragma once
// Conversions between 16-bit floats (IEEE half, bfloat16) and float, bit-exact with ggml's
// reference (ggml_fp16_to_fp32, ggml_compute_fp32_to_bf16).
#include <cstdint>
#include <cstring>

namespace deltainfer::io {

inline float bits_to_float(uint32_t bits) {
  float value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}

inline uint32_t float_to_bits(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  return bits;
}

inline float f16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1fu;
  const uint32_t mantissa = h & 0x3ffu;
  if (exponent == 0x1f) return bits_to_float(sign | 0x7f800000u | (mantissa << 13));  // inf, nan
  if (exponent != 0) return bits_to_float(sign | ((exponent + 112) << 23) | (mantissa << 13));
  if (mantissa == 0) return bits_to_float(sign);
  // Subnormal half: renormalise so the leading 1 becomes the implicit bit of a normal float.
  uint32_t shift = 0;
  uint32_t m = mantissa;
  while ((m & 0x400u) == 0) {
    m <<= 1;
    ++shift;
  }
  return bits_to_float(sign | ((113 - shift) << 23) | ((m & 0x3ffu) << 13));
}

inline float bf16_to_f32(uint16_t b) { return bits_to_float(static_cast<uint32_t>(b) << 16); }

// Round to nearest even; NaNs stay NaN (quietened), as ggml does.
inline uint16_t f32_to_bf16(float value) {
  const uint32_t bits = float_to_bits(value);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 64u);
  return static_cast<uint16_t>((bits + (0x7fffu + ((bits >> 16) & 1u))) >> 16);
}

}  // namespace deltainfer::io
