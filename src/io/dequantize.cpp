#include "io/dequantize.h"

#include <cstring>

#include "core/error.h"
#include "io/half.h"

namespace deltainfer::io {
namespace {

// Block layouts (ggml-common.h). Sizes are checked against ggml_type_traits at compile time below.
constexpr int kQK4 = 32;   // elements per Q4_0 / Q4_1 / Q8_0 block
constexpr int kQKK = 256;  // elements per k-quant super-block
constexpr int kScaleBytesK = 12;

uint16_t load_u16(const uint8_t* p) {
  uint16_t value;
  std::memcpy(&value, p, sizeof value);
  return value;
}

float load_f16(const uint8_t* p) { return f16_to_f32(load_u16(p)); }

// Q4_0: f16 d, 16 bytes of nibbles; element j is the low nibble of byte j, j+16 the high one.
void block_q4_0(const uint8_t* block, float* y) {
  const float d = load_f16(block);
  const uint8_t* qs = block + 2;
  for (int j = 0; j < kQK4 / 2; ++j) {
    const int x0 = (qs[j] & 0x0F) - 8;
    const int x1 = (qs[j] >> 4) - 8;
    y[j] = static_cast<float>(x0) * d;
    y[j + kQK4 / 2] = static_cast<float>(x1) * d;
  }
}

// Q4_1: f16 d, f16 m, nibbles as Q4_0 but unsigned, y = q * d + m.
void block_q4_1(const uint8_t* block, float* y) {
  const float d = load_f16(block);
  const float m = load_f16(block + 2);
  const uint8_t* qs = block + 4;
  for (int j = 0; j < kQK4 / 2; ++j) {
    const int x0 = qs[j] & 0x0F;
    const int x1 = qs[j] >> 4;
    y[j] = static_cast<float>(x0) * d + m;
    y[j + kQK4 / 2] = static_cast<float>(x1) * d + m;
  }
}

// Q8_0: f16 d, 32 signed bytes.
void block_q8_0(const uint8_t* block, float* y) {
  const float d = load_f16(block);
  for (int j = 0; j < kQK4; ++j) y[j] = static_cast<float>(static_cast<int8_t>(block[2 + j])) * d;
}

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

// Q4_K: f16 d, f16 dmin, 12 scale bytes, 128 nibble bytes; 8 sub-blocks of 32.
void block_q4_k(const uint8_t* block, float* y) {
  const float d = load_f16(block);
  const float dmin = load_f16(block + 2);
  const uint8_t* scales = block + 4;
  const uint8_t* q = scales + kScaleBytesK;
  int is = 0;
  for (int j = 0; j < kQKK; j += 64) {
    uint8_t sc = 0;
    uint8_t m = 0;
    scale_min_k4(is + 0, scales, &sc, &m);
    const float d1 = d * static_cast<float>(sc);
    const float m1 = dmin * static_cast<float>(m);
    scale_min_k4(is + 1, scales, &sc, &m);
    const float d2 = d * static_cast<float>(sc);
    const float m2 = dmin * static_cast<float>(m);
    for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>(q[l] & 0xF) - m1;
    for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>(q[l] >> 4) - m2;
    q += 32;
    is += 2;
  }
}

// Q5_K: as Q4_K plus 32 bytes of fifth bits (qh) between the scales and the nibbles.
void block_q5_k(const uint8_t* block, float* y) {
  const float d = load_f16(block);
  const float dmin = load_f16(block + 2);
  const uint8_t* scales = block + 4;
  const uint8_t* qh = scales + kScaleBytesK;
  const uint8_t* ql = qh + kQKK / 8;
  int is = 0;
  unsigned u1 = 1;
  unsigned u2 = 2;
  for (int j = 0; j < kQKK; j += 64) {
    uint8_t sc = 0;
    uint8_t m = 0;
    scale_min_k4(is + 0, scales, &sc, &m);
    const float d1 = d * static_cast<float>(sc);
    const float m1 = dmin * static_cast<float>(m);
    scale_min_k4(is + 1, scales, &sc, &m);
    const float d2 = d * static_cast<float>(sc);
    const float m2 = dmin * static_cast<float>(m);
    for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>((ql[l] & 0xF) + ((qh[l] & u1) != 0 ? 16 : 0)) - m1;
    for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>((ql[l] >> 4) + ((qh[l] & u2) != 0 ? 16 : 0)) - m2;
    ql += 32;
    is += 2;
    u1 <<= 2;
    u2 <<= 2;
  }
}

// Q6_K: 128 bytes low nibbles (ql), 64 bytes high 2-bit pairs (qh), 16 int8 scales, f16 d.
void block_q6_k(const uint8_t* block, float* y) {
  const uint8_t* ql = block;
  const uint8_t* qh = block + kQKK / 2;
  const uint8_t* sc_bytes = qh + kQKK / 4;
  const float d = load_f16(sc_bytes + kQKK / 16);
  for (int n = 0; n < kQKK; n += 128) {
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

void block_f32(const uint8_t* block, float* y) { std::memcpy(y, block, sizeof(float)); }
void block_f16(const uint8_t* block, float* y) { *y = load_f16(block); }
void block_bf16(const uint8_t* block, float* y) { *y = bf16_to_f32(load_u16(block)); }

using BlockFn = void (*)(const uint8_t*, float*);

BlockFn block_function(GgmlType type) {
  switch (type) {
    case GgmlType::F32: return block_f32;
    case GgmlType::F16: return block_f16;
    case GgmlType::BF16: return block_bf16;
    case GgmlType::Q4_0: return block_q4_0;
    case GgmlType::Q4_1: return block_q4_1;
    case GgmlType::Q8_0: return block_q8_0;
    case GgmlType::Q4_K: return block_q4_k;
    case GgmlType::Q5_K: return block_q5_k;
    case GgmlType::Q6_K: return block_q6_k;
    default: return nullptr;
  }
}

}  // namespace

bool can_dequantize(GgmlType type) { return block_function(type) != nullptr; }

const char* dequantizable_type_names() { return "F32, F16, BF16, Q4_0, Q4_1, Q8_0, Q4_K, Q5_K, Q6_K"; }

void dequantize(GgmlType type, const uint8_t* src, float* dst, int64_t n) {
  const BlockFn fn = block_function(type);
  if (fn == nullptr) {
    throw_input_error("tensor type {} cannot be dequantized (supported: {})", ggml_type_name(type),
                      dequantizable_type_names());
  }
  const GgmlTypeTraits& traits = ggml_type_traits(type);
  if (n < 0 || n % traits.block_size != 0) {
    throw_input_error("cannot dequantize {} elements of type {}: not a multiple of its block size {}", n, traits.name,
                      traits.block_size);
  }
  const int64_t n_blocks = n / traits.block_size;
  for (int64_t b = 0; b < n_blocks; ++b) fn(src + b * traits.type_size, dst + b * traits.block_size);
}

void dequantize_rows(GgmlType type, const uint8_t* tensor_data, int64_t row_length, int64_t first_row, int64_t n_rows,
                     float* dst) {
  const GgmlTypeTraits& traits = ggml_type_traits(type);
  if (row_length <= 0 || row_length % traits.block_size != 0) {
    throw_input_error("cannot dequantize rows of {} elements of type {}: not a multiple of its block size {}",
                      row_length, traits.name, traits.block_size);
  }
  const int64_t row_bytes = row_length / traits.block_size * traits.type_size;
  dequantize(type, tensor_data + first_row * row_bytes, dst, n_rows * row_length);
}

}  // namespace deltainfer::io
