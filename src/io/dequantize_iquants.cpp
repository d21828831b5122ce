// ggml's non-linear 4-bit types: each nibble indexes a fixed 16-entry codebook (kvalues_iq4nl)
// scaled by the block's d; bit-exact with ggml's dequantize_row_iq4_nl / _iq4_xs.
#include "io/dequantize_blocks.h"

namespace deltainfer::io::blocks {
namespace {

constexpr int8_t kValuesIq4nl[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
constexpr int kQK4 = 32;   // IQ4_NL block, and IQ4_XS sub-block
constexpr int kQK = 256;   // IQ4_XS super-block

// 32 values from 16 bytes: element j is the low nibble of byte j, element j + 16 the high one.
void decode_nibbles(const uint8_t* qs, float scale, float* y) {
  for (int j = 0; j < kQK4 / 2; ++j) {
    y[j] = scale * static_cast<float>(kValuesIq4nl[qs[j] & 0xF]);
    y[j + kQK4 / 2] = scale * static_cast<float>(kValuesIq4nl[qs[j] >> 4]);
  }
}

}  // namespace

// IQ4_NL: f16 d, 16 bytes of codebook indices.
void iq4_nl(const uint8_t* block, float* y) { decode_nibbles(block + 2, load_f16(block), y); }

// IQ4_XS: f16 d, u16 high scale bits, 4 bytes of low scale nibbles, 128 bytes of indices; eight
// sub-blocks of 32, each with a 6-bit scale (low nibble | 2 high bits << 4) offset by -32.
void iq4_xs(const uint8_t* block, float* y) {
  const float d = load_f16(block);
  const uint16_t scales_h = load_u16(block + 2);
  const uint8_t* scales_l = block + 4;
  const uint8_t* qs = scales_l + kQK / 64;
  for (int ib = 0; ib < kQK / kQK4; ++ib) {
    const int ls = ((scales_l[ib / 2] >> (4 * (ib % 2))) & 0xF) | (((scales_h >> (2 * ib)) & 3) << 4);
    decode_nibbles(qs, d * static_cast<float>(ls - 32), y);
    y += kQK4;
    qs += kQK4 / 2;
  }
}

}  // namespace deltainfer::io::blocks
