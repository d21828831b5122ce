#pragma once
// Random but valid ggml blocks for the quantized-kernel tests: random quant bytes, with every f16
// scale field set to a finite value of a realistic magnitude (random bytes there would give
// infinities and NaNs that no quantizer writes).
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "backend/cpu/quant/quantized_matrix.h"
#include "io/ggml_type.h"

namespace deltainfer::testing {

// A random f16 of magnitude in [2^-10, 2^-3) with a random sign when `signed_value`.
inline uint16_t random_half(std::mt19937& rng, bool signed_value) {
  const auto bits = [&rng] { return static_cast<uint32_t>(rng()); };
  const uint32_t exponent = 5 + bits() % 7;  // biased exponents 5..11: 2^-10 .. 2^-4 scale
  const uint32_t mantissa = bits() & 0x3FFu;
  const uint32_t sign = signed_value ? (bits() & 1u) << 15 : 0u;
  return static_cast<uint16_t>(sign | (exponent << 10) | mantissa);
}

inline void put_half(uint8_t* p, uint16_t bits) { std::memcpy(p, &bits, sizeof bits); }

// Byte offsets of the f16 fields of one block: the scale (set positive, as quantizers store it for
// the asymmetric types) and the min / offset where the type has one (either sign).
struct HalfFields {
  int scale;
  int offset;  // -1 when the type has none
};

inline HalfFields half_fields(io::GgmlType type) {
  switch (type) {
    case io::GgmlType::Q4_1:
    case io::GgmlType::Q5_1:
    case io::GgmlType::Q4_K:
    case io::GgmlType::Q5_K: return {0, 2};
    case io::GgmlType::Q6_K: return {208, -1};
    default: return {0, -1};  // Q4_0, Q5_0, Q8_0
  }
}

// rows × (cols / block_size) random valid blocks of `type`.
inline std::vector<uint8_t> random_blocks(io::GgmlType type, int64_t rows, int64_t cols, std::mt19937& rng) {
  const io::GgmlTypeTraits& traits = io::ggml_type_traits(type);
  const int64_t n_blocks = rows * cols / traits.block_size;
  std::vector<uint8_t> bytes(static_cast<size_t>(n_blocks * traits.type_size));
  for (uint8_t& b : bytes) b = static_cast<uint8_t>(rng());
  const HalfFields fields = half_fields(type);
  for (int64_t b = 0; b < n_blocks; ++b) {
    uint8_t* block = bytes.data() + b * traits.type_size;
    put_half(block + fields.scale, random_half(rng, false));
    if (fields.offset >= 0) put_half(block + fields.offset, random_half(rng, true));
  }
  return bytes;
}

// A rows × cols QuantizedMatrix of random valid blocks.
inline backend::cpu::quant::QuantizedMatrix random_matrix(io::GgmlType type, int64_t rows, int64_t cols,
                                                          std::mt19937& rng) {
  backend::cpu::quant::QuantizedMatrix m;
  m.type = type;
  m.rows = rows;
  m.cols = cols;
  m.blocks = random_blocks(type, rows, cols, rng);
  return m;
}

}  // namespace deltainfer::testing
