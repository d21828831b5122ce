#pragma once
// One block of each ggml storage type -> float, as ggml's reference dequantize_row_* computes it
// (ggml-quants.c; block layouts in ggml-common.h). Each function reads one block of the type's
// type_size bytes at `block` and writes its block_size floats to `y`. Internal to io/dequantize.
#include <cstdint>
#include <cstring>

#include "io/half.h"

namespace deltainfer::io::blocks {

inline uint16_t load_u16(const uint8_t* p) {
  uint16_t value;
  std::memcpy(&value, p, sizeof value);
  return value;
}

inline float load_f16(const uint8_t* p) { return f16_to_f32(load_u16(p)); }

// Plain floats and the 32-element block types (dequantize_legacy.cpp).
void f32(const uint8_t* block, float* y);
void f16(const uint8_t* block, float* y);
void bf16(const uint8_t* block, float* y);
void q4_0(const uint8_t* block, float* y);
void q4_1(const uint8_t* block, float* y);
void q5_0(const uint8_t* block, float* y);
void q5_1(const uint8_t* block, float* y);
void q8_0(const uint8_t* block, float* y);

// The k-quants: 256-element super-blocks (dequantize_kquants.cpp).
void q2_k(const uint8_t* block, float* y);
void q3_k(const uint8_t* block, float* y);
void q4_k(const uint8_t* block, float* y);
void q5_k(const uint8_t* block, float* y);
void q6_k(const uint8_t* block, float* y);
void q8_k(const uint8_t* block, float* y);

// The non-linear 4-bit i-quants (dequantize_iquants.cpp).
void iq4_nl(const uint8_t* block, float* y);
void iq4_xs(const uint8_t* block, float* y);

}  // namespace deltainfer::io::blocks
