// Portable reference dot products, one per weight type, written straight from block_layouts.h.
#include <cstddef>

#include "backend/cpu/quant/block_layouts.h"
#include "backend/cpu/quant/dot_kernels.h"

namespace deltainfer::backend::cpu::quant {
namespace {

const Q8Block* as_q8(const void* p) { return static_cast<const Q8Block*>(p); }
const Q8KBlock* as_q8k(const void* p) { return static_cast<const Q8KBlock*>(p); }

// Σ w[i] * x[i] over a 32-element block whose 4-bit values are `nibbles`, plus a fifth bit from
// qh (0 when the type has none), minus `offset`.
int block_sum_4bit(const uint8_t* nibbles, uint32_t qh, int offset, const int8_t* x) {
  int sum = 0;
  for (int j = 0; j < kBlock / 2; ++j) {
    const int lo = (nibbles[j] & 0xF) | static_cast<int>(((qh >> j) & 1u) << 4);
    const int hi = (nibbles[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1u) << 4);
    sum += (lo - offset) * x[j] + (hi - offset) * x[j + kBlock / 2];
  }
  return sum;
}

float dot_q4_0(const uint8_t* w, const void* act, int64_t n_blocks) {
  const Q8Block* x = as_q8(act);
  float total = 0.0f;
  for (int64_t b = 0; b < n_blocks; ++b, w += kQ4_0Bytes) {
    total += load_f16(w) * x[b].d * static_cast<float>(block_sum_4bit(w + 2, 0, 8, x[b].qs));
  }
  return total;
}

float dot_q4_1(const uint8_t* w, const void* act, int64_t n_blocks) {
  const Q8Block* x = as_q8(act);
  float total = 0.0f;
  for (int64_t b = 0; b < n_blocks; ++b, w += kQ4_1Bytes) {
    total += load_f16(w) * x[b].d * static_cast<float>(block_sum_4bit(w + 4, 0, 0, x[b].qs)) +
             load_f16(w + 2) * x[b].sum;
  }
  return total;
}

float dot_q5_0(const uint8_t* w, const void* act, int64_t n_blocks) {
  const Q8Block* x = as_q8(act);
  float total = 0.0f;
  for (int64_t b = 0; b < n_blocks; ++b, w += kQ5_0Bytes) {
    total += load_f16(w) * x[b].d * static_cast<float>(block_sum_4bit(w + 6, load_u32(w + 2), 16, x[b].qs));
  }
  return total;
}

float dot_q5_1(const uint8_t* w, const void* act, int64_t n_blocks) {
  const Q8Block* x = as_q8(act);
  float total = 0.0f;
  for (int64_t b = 0; b < n_blocks; ++b, w += kQ5_1Bytes) {
    total += load_f16(w) * x[b].d * static_cast<float>(block_sum_4bit(w + 8, load_u32(w + 4), 0, x[b].qs)) +
             load_f16(w + 2) * x[b].sum;
  }
  return total;
}

float dot_q8_0(const uint8_t* w, const void* act, int64_t n_blocks) {
  const Q8Block* x = as_q8(act);
  float total = 0.0f;
  for (int64_t b = 0; b < n_blocks; ++b, w += kQ8_0Bytes) {
    int sum = 0;
    for (int j = 0; j < kBlock; ++j) sum += static_cast<int8_t>(w[2 + j]) * x[b].qs[j];
    total += load_f16(w) * x[b].d * static_cast<float>(sum);
  }
  return total;
}

// Q4_K and Q5_K: 4 groups of 64 elements; qh is null for Q4_K.
float dot_k_4or5bit(const uint8_t* w, const uint8_t* qh, const uint8_t* nibbles, const Q8KBlock& x) {
  uint8_t scales[8];
  uint8_t mins[8];
  unpack_k_scales(w + 4, scales, mins);
  int scaled = 0;
  int min_terms = 0;
  for (int g = 0; g < 4; ++g) {
    const uint8_t* q = nibbles + 32 * g;
    const int8_t* y = x.qs + 64 * g;
    int lo = 0;
    int hi = 0;
    for (int l = 0; l < 32; ++l) {
      const int bit_lo = qh != nullptr ? ((qh[l] >> (2 * g)) & 1) << 4 : 0;
      const int bit_hi = qh != nullptr ? ((qh[l] >> (2 * g + 1)) & 1) << 4 : 0;
      lo += ((q[l] & 0xF) | bit_lo) * y[l];
      hi += ((q[l] >> 4) | bit_hi) * y[l + 32];
    }
    scaled += scales[2 * g] * lo + scales[2 * g + 1] * hi;
    min_terms += mins[2 * g] * (x.bsums[4 * g] + x.bsums[4 * g + 1]) +
                 mins[2 * g + 1] * (x.bsums[4 * g + 2] + x.bsums[4 * g + 3]);
  }
  return x.d * (load_f16(w) * static_cast<float>(scaled) - load_f16(w + 2) * static_cast<float>(min_terms));
}

float dot_q4_k(const uint8_t* w, const void* act, int64_t n_blocks) {
  const Q8KBlock* x = as_q8k(act);
  float total = 0.0f;
  for (int64_t b = 0; b < n_blocks; ++b, w += kQ4_KBytes) total += dot_k_4or5bit(w, nullptr, w + 16, x[b]);
  return total;
}

float dot_q5_k(const uint8_t* w, const void* act, int64_t n_blocks) {
  const Q8KBlock* x = as_q8k(act);
  float total = 0.0f;
  for (int64_t b = 0; b < n_blocks; ++b, w += kQ5_KBytes) total += dot_k_4or5bit(w, w + 16, w + 48, x[b]);
  return total;
}

float dot_q6_k(const uint8_t* w, const void* act, int64_t n_blocks) {
  const Q8KBlock* x = as_q8k(act);
  float total = 0.0f;
  for (int64_t b = 0; b < n_blocks; ++b, w += kQ6_KBytes) {
    const auto* scales = reinterpret_cast<const int8_t*>(w + 192);
    int sum = 0;
    for (int half = 0; half < 2; ++half) {
      const uint8_t* ql = w + 64 * half;
      const uint8_t* qh = w + 128 + 32 * half;
      const int8_t* y = x[b].qs + 128 * half;
      const int8_t* sc = scales + 8 * half;
      for (int l = 0; l < 32; ++l) {
        const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        const int is = l / 16;
        sum += sc[is] * q1 * y[l] + sc[is + 2] * q2 * y[l + 32] + sc[is + 4] * q3 * y[l + 64] +
               sc[is + 6] * q4 * y[l + 96];
      }
    }
    total += load_f16(w + 208) * x[b].d * static_cast<float>(sum);
  }
  return total;
}

}  // namespace

RowDot scalar_dot(io::GgmlType type) {
  switch (type) {
    case io::GgmlType::Q4_0: return dot_q4_0;
    case io::GgmlType::Q4_1: return dot_q4_1;
    case io::GgmlType::Q5_0: return dot_q5_0;
    case io::GgmlType::Q5_1: return dot_q5_1;
    case io::GgmlType::Q8_0: return dot_q8_0;
    case io::GgmlType::Q4_K: return dot_q4_k;
    case io::GgmlType::Q5_K: return dot_q5_k;
    case io::GgmlType::Q6_K: return dot_q6_k;
    default: return nullptr;
  }
}

}  // namespace deltainfer::backend::cpu::quant
