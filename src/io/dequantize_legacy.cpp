// Plain floats and ggml's 32-element block types (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0), bit-exact with
// ggml's dequantize_row_*. In every 4-/5-bit type byte j holds element j in its low nibble and
// element j + 16 in its high nibble.
#include "io/dequantize_blocks.h"

namespace deltainfer::io::blocks {
namespace {

constexpr int kQK = 32;  // elements per block

// Q5_0 / Q5_1: the fifth bit of element j is bit j of the little-endian u32 qh.
uint32_t load_u32(const uint8_t* p) {
  uint32_t value;
  std::memcpy(&value, p, sizeof value);
  return value;
}

int fifth_bit_low(uint32_t qh, int j) { return static_cast<int>(((qh >> j) << 4) & 0x10); }
int fifth_bit_high(uint32_t qh, int j) { return static_cast<int>((qh >> (j + 12)) & 0x10); }

}  // namespace

void f32(const uint8_t* block, float* y) { std::memcpy(y, block, sizeof(float)); }
void f16(const uint8_t* block, float* y) { *y = load_f16(block); }
void bf16(const uint8_t* block, float* y) { *y = bf16_to_f32(load_u16(block)); }

// Q4_0: f16 d, 16 bytes of nibbles, y = (q - 8) * d.
void q4_0(const uint8_t* block, float* y) {
  const float d = load_f16(block);
  const uint8_t* qs = block + 2;
  for (int j = 0; j < kQK / 2; ++j) {
    const int x0 = (qs[j] & 0x0F) - 8;
    const int x1 = (qs[j] >> 4) - 8;
    y[j] = static_cast<float>(x0) * d;
    y[j + kQK / 2] = static_cast<float>(x1) * d;
  }
}

// Q4_1: f16 d, f16 m, nibbles as Q4_0 but unsigned, y = q * d + m.
void q4_1(const uint8_t* block, float* y) {
  const float d = load_f16(block);
  const float m = load_f16(block + 2);
  const uint8_t* qs = block + 4;
  for (int j = 0; j < kQK / 2; ++j) {
    const int x0 = qs[j] & 0x0F;
    const int x1 = qs[j] >> 4;
    y[j] = static_cast<float>(x0) * d + m;
    y[j + kQK / 2] = static_cast<float>(x1) * d + m;
  }
}

// Q5_0: f16 d, u32 fifth bits, 16 bytes of nibbles, y = (q - 16) * d.
void q5_0(const uint8_t* block, float* y) {
  const float d = load_f16(block);
  const uint32_t qh = load_u32(block + 2);
  const uint8_t* qs = block + 6;
  for (int j = 0; j < kQK / 2; ++j) {
    const int x0 = ((qs[j] & 0x0F) | fifth_bit_low(qh, j)) - 16;
    const int x1 = ((qs[j] >> 4) | fifth_bit_high(qh, j)) - 16;
    y[j] = static_cast<float>(x0) * d;
    y[j + kQK / 2] = static_cast<float>(x1) * d;
  }
}

// Q5_1: f16 d, f16 m, u32 fifth bits, 16 bytes of nibbles, y = q * d + m.
void q5_1(const uint8_t* block, float* y) {
  const float d = load_f16(block);
  const float m = load_f16(block + 2);
  const uint32_t qh = load_u32(block + 4);
  const uint8_t* qs = block + 8;
  for (int j = 0; j < kQK / 2; ++j) {
    const int x0 = (qs[j] & 0x0F) | fifth_bit_low(qh, j);
    const int x1 = (qs[j] >> 4) | fifth_bit_high(qh, j);
    y[j] = static_cast<float>(x0) * d + m;
    y[j + kQK / 2] = static_cast<float>(x1) * d + m;
  }
}

// Q8_0: f16 d, 32 signed bytes.
void q8_0(const uint8_t* block, float* y) {
  const float d = load_f16(block);
  for (int j = 0; j < kQK; ++j) y[j] = static_cast<float>(static_cast<int8_t>(block[2 + j])) * d;
}

}  // namespace deltainfer::io::blocks
