#pragma once
// Byte layouts of the ggml weight blocks the quantized kernels read (ggml-common.h), and of the
// activation blocks they pair with. Every kernel variant (scalar, AVX2) reads blocks through
// these offsets, so a layout is written down once.
#include <cstdint>
#include <cstring>

#include "io/half.h"

namespace deltainfer::backend::cpu::quant {

constexpr int kBlock = 32;        // elements per Q4_0 / Q4_1 / Q5_0 / Q5_1 / Q8_0 block
constexpr int kSuperBlock = 256;  // elements per k-quant super-block

// Q4_0 (18 B): f16 d | 16 B nibbles. Element j < 16 is the low nibble of byte j, j + 16 the high.
// Value (q - 8) * d.
constexpr int kQ4_0Bytes = 18;
// Q4_1 (20 B): f16 d | f16 m | 16 B nibbles (as Q4_0). Value q * d + m.
constexpr int kQ4_1Bytes = 20;
// Q5_0 (22 B): f16 d | u32 qh (bit i: fifth bit of element i) | 16 B nibbles. Value (q - 16) * d.
constexpr int kQ5_0Bytes = 22;
// Q5_1 (24 B): f16 d | f16 m | u32 qh | 16 B nibbles. Value q * d + m.
constexpr int kQ5_1Bytes = 24;
// Q8_0 (34 B): f16 d | 32 int8. Value q * d.
constexpr int kQ8_0Bytes = 34;
// Q4_K (144 B): f16 d | f16 dmin | 12 B packed 6-bit (scale, min) of 8 sub-blocks of 32 |
// 128 B nibbles: 4 groups of 32 bytes, low nibbles = sub-block 2g, high = 2g + 1.
// Value d * scale * q - dmin * min.
constexpr int kQ4_KBytes = 144;
// Q5_K (176 B): as Q4_K with 32 B qh between scales and nibbles; element l of sub-block s has its
// fifth bit in bit s of qh[l].
constexpr int kQ5_KBytes = 176;
// Q6_K (210 B): 128 B ql | 64 B qh | 16 int8 scales (one per 16 elements) | f16 d. Each half of
// 128 elements uses 64 B of ql and 32 B of qh; see the kernels. Value d * scale * (q - 32).
constexpr int kQ6_KBytes = 210;

inline float load_f16(const uint8_t* p) {
  uint16_t bits;
  std::memcpy(&bits, p, sizeof bits);
  return io::f16_to_f32(bits);
}

inline uint32_t load_u32(const uint8_t* p) {
  uint32_t value;
  std::memcpy(&value, p, sizeof value);
  return value;
}

// The 6-bit scales and mins of the 8 sub-blocks of a Q4_K / Q5_K super-block.
inline void unpack_k_scales(const uint8_t* packed, uint8_t scales[8], uint8_t mins[8]) {
  for (int j = 0; j < 4; ++j) {
    scales[j] = packed[j] & 63;
    mins[j] = packed[j + 4] & 63;
  }
  for (int j = 4; j < 8; ++j) {
    scales[j] = static_cast<uint8_t>((packed[j + 4] & 0xF) | ((packed[j - 4] >> 6) << 4));
    mins[j] = static_cast<uint8_t>((packed[j + 4] >> 4) | ((packed[j] >> 6) << 4));
  }
}

// Activations quantized for the 32-element types: d * qs[i] ≈ x[i]; sum = d * Σ qs (the term a
// block offset, Q4_1's and Q5_1's m, multiplies).
struct Q8Block {
  float d;
  float sum;
  int8_t qs[kBlock];
};

// Activations quantized for the k-quants: bsums[g] = Σ qs[16 g .. 16 g + 15] (the term mins and
// Q6_K's -32 offset multiply).
struct Q8KBlock {
  float d;
  int8_t qs[kSuperBlock];
  int16_t bsums[kSuperBlock / 16];
};

}  // namespace deltainfer::backend::cpu::quant
