// ggml's k-quants (Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K): 256-element super-blocks of 16 or 8
// sub-blocks, each with its own quantized scale; bit-exact with ggml's dequantize_row_*.
#include "io/dequantize_blocks.h"

namespace deltainfer::io::blocks {
namespace {

constexpr int kQK = 256;  // elements per super-block
constexpr int kScaleBytesK = 12;

// Q2_K and Q3_K store 2-bit values four to a byte: the values for element groups j = 0..3 of a
// 128-element half are at bit shift 2 * j of the same 32 bytes.
int two_bits(uint8_t byte, int shift) { return (byte >> shift) & 3; }

// The 6-bit scale and min of sub-block j (0..7) packed into 12 bytes (get_scale_min_k4).
void scale_min_k4(int j, const uint8_t* q, uint8_t* scale, uint8_t* min) {
  if (j < 4) {
    *scale = q[j] & 63;
    *min = q[j + 4] & 63;
  } else {
    *scale = static_cast<uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    *min = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

// Q4_K / Q5_K sub-block j's scale and min: its 6-bit factors times the super-block's d and dmin.
struct ScaleMin {
  float scale;
  float min;
};

ScaleMin sub_block_scale_min(int j, const uint8_t* packed, float d, float dmin) {
  uint8_t sc = 0;
  uint8_t m = 0;
  scale_min_k4(j, packed, &sc, &m);
  return {d * static_cast<float>(sc), dmin * static_cast<float>(m)};
}

// Q3_K's 16 signed 6-bit scales from 12 bytes: the low 4 bits of scale i are nibble i of bytes
// 0..7 (low nibbles first), the high 2 bits are bit pair i / 4 ... of bytes 8..11. Returns the
// scales before the -32 offset, as ggml's kmask1/kmask2 unpacking does.
void unpack_q3_k_scales(const uint8_t* packed, int8_t* scales) {
  for (int i = 0; i < 16; ++i) {
    const int low = i < 8 ? (packed[i] & 0xF) : (packed[i - 8] >> 4);
    const int high = (packed[8 + i % 4] >> (2 * (i / 4))) & 3;
    scales[i] = static_cast<int8_t>(low | (high << 4));
  }
}

}  // namespace

// Q2_K: 16 scale bytes (low nibble scale, high nibble min), 64 bytes of 2-bit values, f16 d, f16 dmin.
void q2_k(const uint8_t* block, float* y) {
  const uint8_t* scales = block;
  const uint8_t* q = block + kQK / 16;
  const float d = load_f16(q + kQK / 4);
  const float dmin = load_f16(q + kQK / 4 + 2);
  int is = 0;
  for (int n = 0; n < kQK; n += 128) {
    for (int shift = 0; shift < 8; shift += 2) {
      for (int half = 0; half < 2; ++half) {
        const uint8_t sc = scales[is++];
        const float dl = d * static_cast<float>(sc & 0xF);
        const float ml = dmin * static_cast<float>(sc >> 4);
        const uint8_t* qs = q + 16 * half;
        for (int l = 0; l < 16; ++l) *y++ = dl * static_cast<float>(two_bits(qs[l], shift)) - ml;
      }
    }
    q += 32;
  }
}

// Q3_K: 32 bytes of high bits (hmask), 64 bytes of 2-bit low values, 12 bytes of 6-bit scales,
// f16 d. A value is its 2 low bits minus 4 when its hmask bit is clear.
void q3_k(const uint8_t* block, float* y) {
  const uint8_t* hm = block;
  const uint8_t* q = block + kQK / 8;
  const uint8_t* packed_scales = q + kQK / 4;
  const float d_all = load_f16(packed_scales + kScaleBytesK);
  int8_t scales[16];
  unpack_q3_k_scales(packed_scales, scales);
  int is = 0;
  uint8_t m = 1;
  for (int n = 0; n < kQK; n += 128) {
    for (int shift = 0; shift < 8; shift += 2) {
      for (int half = 0; half < 2; ++half) {
        const float dl = d_all * static_cast<float>(scales[is++] - 32);
        const int offset = 16 * half;
        for (int l = 0; l < 16; ++l) {
          const int value = two_bits(q[offset + l], shift) - ((hm[offset + l] & m) != 0 ? 0 : 4);
          *y++ = dl * static_cast<float>(value);
        }
      }
      m = static_cast<uint8_t>(m << 1);
    }
    q += 32;
  }
}

// Q4_K: f16 d, f16 dmin, 12 scale bytes, 128 nibble bytes; 8 sub-blocks of 32.
void q4_k(const uint8_t* block, float* y) {
  const float d = load_f16(block);
  const float dmin = load_f16(block + 2);
  const uint8_t* scales = block + 4;
  const uint8_t* q = scales + kScaleBytesK;
  int is = 0;
  for (int j = 0; j < kQK; j += 64) {
    const ScaleMin lo = sub_block_scale_min(is, scales, d, dmin);
    const ScaleMin hi = sub_block_scale_min(is + 1, scales, d, dmin);
    for (int l = 0; l < 32; ++l) *y++ = lo.scale * static_cast<float>(q[l] & 0xF) - lo.min;
    for (int l = 0; l < 32; ++l) *y++ = hi.scale * static_cast<float>(q[l] >> 4) - hi.min;
    q += 32;
    is += 2;
  }
}

// Q5_K: as Q4_K plus 32 bytes of fifth bits (qh) between the scales and the nibbles.
void q5_k(const uint8_t* block, float* y) {
  const float d = load_f16(block);
  const float dmin = load_f16(block + 2);
  const uint8_t* scales = block + 4;
  const uint8_t* qh = scales + kScaleBytesK;
  const uint8_t* ql = qh + kQK / 8;
  int is = 0;
  unsigned u1 = 1;
  unsigned u2 = 2;
  for (int j = 0; j < kQK; j += 64) {
    const ScaleMin lo = sub_block_scale_min(is, scales, d, dmin);
    const ScaleMin hi = sub_block_scale_min(is + 1, scales, d, dmin);
    for (int l = 0; l < 32; ++l) {
      *y++ = lo.scale * static_cast<float>((ql[l] & 0xF) + ((qh[l] & u1) != 0 ? 16 : 0)) - lo.min;
    }
    for (int l = 0; l < 32; ++l) {
      *y++ = hi.scale * static_cast<float>((ql[l] >> 4) + ((qh[l] & u2) != 0 ? 16 : 0)) - hi.min;
    }
    ql += 32;
    is += 2;
    u1 <<= 2;
    u2 <<= 2;
  }
}

// Q6_K: 128 bytes low nibbles (ql), 64 bytes high 2-bit pairs (qh), 16 int8 scales, f16 d.
void q6_k(const uint8_t* block, float* y) {
  const uint8_t* ql = block;
  const uint8_t* qh = block + kQK / 2;
  const uint8_t* sc_bytes = qh + kQK / 4;
  const float d = load_f16(sc_bytes + kQK / 16);
  for (int n = 0; n < kQK; n += 128) {
    for (int l = 0; l < 32; ++l) {
      const int is = l / 16;
      const int q1 = static_cast<int8_t>((ql[l + 0] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
      const int q2 = static_cast<int8_t>((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
      const int q3 = static_cast<int8_t>((ql[l + 0] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
      const int q4 = static_cast<int8_t>((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
      auto scale = [&](int k) { return static_cast<float>(static_cast<int8_t>(sc_bytes[k])); };
      y[l + 0] = d * scale(is + 0) * static_cast<float>(q1);
      y[l + 32] = d * scale(is + 2) * static_cast<float>(q2);
      y[l + 64] = d * scale(is + 4) * static_cast<float>(q3);
      y[l + 96] = d * scale(is + 6) * static_cast<float>(q4);
    }
    y += 128;
    ql += 64;
    qh += 32;
    sc_bytes += 8;
  }
}

// Q8_K: f32 d, 256 signed bytes, 16 i16 block sums (for dot products only; not read here).
void q8_k(const uint8_t* block, float* y) {
  float d;
  std::memcpy(&d, block, sizeof d);
  const uint8_t* qs = block + 4;
  for (int j = 0; j < kQK; ++j) y[j] = d * static_cast<float>(static_cast<int8_t>(qs[j]));
}

}  // namespace deltainfer::io::blocks
