// AVX2 dot products. Compiled with function-level target attributes, so the build needs no -march
// flag; kernel_dispatch.cpp only hands them out on a CPU that reports AVX2, FMA and F16C. Per block they
// form the same integer sums as dot_scalar.cpp (8-bit products summed in 16 then 32 bits, which
// cannot overflow for these value ranges) and accumulate the f32 block terms in 8 lanes.
#include "backend/cpu/quant/dot_kernels.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#include <cmath>

#include "backend/cpu/quant/block_layouts.h"

#define DI_AVX2 __attribute__((target("avx2,fma,f16c")))

namespace deltainfer::backend::cpu::quant {
namespace {

// The hardware conversion (F16C comes with every AVX2 CPU; the dispatcher checks it anyway).
DI_AVX2 inline float load_f16(const uint8_t* p) {
  uint16_t bits;
  std::memcpy(&bits, p, sizeof bits);
  return _cvtsh_ss(bits);
}

DI_AVX2 inline float horizontal_sum(__m256 v) {
  __m128 sum = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  sum = _mm_add_ps(sum, _mm_movehl_ps(sum, sum));
  sum = _mm_add_ss(sum, _mm_movehdup_ps(sum));
  return _mm_cvtss_f32(sum);
}

// 16 bytes of nibbles -> 32 bytes: the low nibbles (elements 0..15), then the high (16..31).
DI_AVX2 inline __m256i unpack_nibbles(const uint8_t* nibbles) {
  const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(nibbles));
  const __m256i both = _mm256_set_m128i(_mm_srli_epi16(packed, 4), packed);
  return _mm256_and_si256(both, _mm256_set1_epi8(0x0F));
}

// Byte i is 0xFF where bit i of `bits` is set, else 0.
DI_AVX2 inline __m256i bits_to_byte_mask(uint32_t bits) {
  const __m256i byte_of_bit = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,  //
                                               2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
  const __m256i spread = _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(bits)), byte_of_bit);
  const __m256i bit_of_byte = _mm256_set1_epi64x(static_cast<int64_t>(0x8040201008040201ull));
  return _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit_of_byte), bit_of_byte);
}

// 8 int32 partial sums of unsigned bytes u times signed bytes s.
DI_AVX2 inline __m256i dot_unsigned_signed(__m256i u, __m256i s) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}

DI_AVX2 inline __m256i load32(const int8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
DI_AVX2 inline __m256i load32(const uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }

// The fifth bits of a Q5 block as 0x10 per byte.
DI_AVX2 inline __m256i fifth_bits(const uint8_t* qh) {
  return _mm256_and_si256(bits_to_byte_mask(load_u32(qh)), _mm256_set1_epi8(0x10));
}

// The 32-element types differ only in how a block's 32 values are unpacked: signed values
// (Q4_0, Q5_0, Q8_0) or unsigned values plus a per-block offset m (Q4_1, Q5_1). Q4_0 and Q5_0 are
// also unsigned values minus a constant (kOffset), which the four-weight-row kernel uses.
struct Q4_0 {
  static constexpr int kBytes = kQ4_0Bytes;
  static constexpr bool kHasMin = false;
  static constexpr int kOffset = 8;
  DI_AVX2 static __m256i unsigned_values(const uint8_t* w) { return unpack_nibbles(w + 2); }
  DI_AVX2 static __m256i values(const uint8_t* w) { return _mm256_sub_epi8(unsigned_values(w), _mm256_set1_epi8(8)); }
};
struct Q4_1 {
  static constexpr int kBytes = kQ4_1Bytes;
  static constexpr bool kHasMin = true;
  static constexpr int kOffset = 0;
  DI_AVX2 static __m256i unsigned_values(const uint8_t* w) { return unpack_nibbles(w + 4); }
  DI_AVX2 static __m256i values(const uint8_t* w) { return unsigned_values(w); }
};
struct Q5_0 {
  static constexpr int kBytes = kQ5_0Bytes;
  static constexpr bool kHasMin = false;
  static constexpr int kOffset = 16;
  DI_AVX2 static __m256i unsigned_values(const uint8_t* w) {
    return _mm256_or_si256(unpack_nibbles(w + 6), fifth_bits(w + 2));
  }
  DI_AVX2 static __m256i values(const uint8_t* w) { return _mm256_sub_epi8(unsigned_values(w), _mm256_set1_epi8(16)); }
};
struct Q5_1 {
  static constexpr int kBytes = kQ5_1Bytes;
  static constexpr bool kHasMin = true;
  static constexpr int kOffset = 0;
  DI_AVX2 static __m256i unsigned_values(const uint8_t* w) {
    return _mm256_or_si256(unpack_nibbles(w + 8), fifth_bits(w + 4));
  }
  DI_AVX2 static __m256i values(const uint8_t* w) { return unsigned_values(w); }
};
struct Q8_0 {
  static constexpr int kBytes = kQ8_0Bytes;
  static constexpr bool kHasMin = false;
  static constexpr int kOffset = -1;  // signed values: no unsigned form
  DI_AVX2 static __m256i values(const uint8_t* w) { return load32(w + 2); }
};

// One weight row against kRows activation rows: each weight block is unpacked once and used
// kRows times (prefill), which is where the multi-row variant gains over kRows single dots.
template <typename Type, int kRows>
DI_AVX2 void dot_rows(const uint8_t* w, const Q8Block* const* x, int64_t n_blocks, float* out) {
  __m256 acc[kRows];
  float offsets[kRows];
  for (int r = 0; r < kRows; ++r) {
    acc[r] = _mm256_setzero_ps();
    offsets[r] = 0.0f;
  }
  for (int64_t b = 0; b < n_blocks; ++b, w += Type::kBytes) {
    const __m256i q = Type::values(w);
    // maddubs multiplies unsigned by signed bytes: signed weights lend their sign to the activations.
    const __m256i q_unsigned = Type::kHasMin ? q : _mm256_sign_epi8(q, q);
    const float d = load_f16(w);
    for (int r = 0; r < kRows; ++r) {
      const Q8Block& block = x[r][b];
      const __m256i y = Type::kHasMin ? load32(block.qs) : _mm256_sign_epi8(load32(block.qs), q);
      const __m256 sums = _mm256_cvtepi32_ps(dot_unsigned_signed(q_unsigned, y));
      acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(d * block.d), sums, acc[r]);
      // An explicit fma in every kernel (not left to contraction), so that they all round alike.
      if (Type::kHasMin) offsets[r] = std::fma(load_f16(w + 2), block.sum, offsets[r]);
    }
  }
  for (int r = 0; r < kRows; ++r) out[r] = horizontal_sum(acc[r]) + offsets[r];
}

template <typename Type>
DI_AVX2 float dot_one(const uint8_t* w, const void* act, int64_t n_blocks) {
  const Q8Block* x[1] = {static_cast<const Q8Block*>(act)};
  float result;
  dot_rows<Type, 1>(w, x, n_blocks, &result);
  return result;
}

template <typename Type>
DI_AVX2 void dot_four(const uint8_t* w, const void* const* act, int64_t n_blocks, float* out) {
  const Q8Block* x[4];
  for (int r = 0; r < 4; ++r) x[r] = static_cast<const Q8Block*>(act[r]);
  dot_rows<Type, 4>(w, x, n_blocks, out);
}

// The four horizontal sums of a, b, c, d, each added in horizontal_sum's order
// ((v0+v4)+(v2+v6)) + ((v1+v5)+(v3+v7)), so that a row's product is bit for bit the same whichever
// kernel computed it: a sequence's logits do not depend on the batch it decodes in.
DI_AVX2 inline __m128 halves(__m256 v) {  // (v0+v4, v2+v6, v1+v5, v3+v7)
  const __m128 sum = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  return _mm_shuffle_ps(sum, sum, _MM_SHUFFLE(3, 1, 2, 0));
}

DI_AVX2 inline __m128 horizontal_sums4(__m256 a, __m256 b, __m256 c, __m256 d) {
  const __m128 ab = _mm_hadd_ps(halves(a), halves(b));  // (a02, a13, b02, b13)
  const __m128 cd = _mm_hadd_ps(halves(c), halves(d));
  return _mm_hadd_ps(ab, cd);  // (a02 + a13, b02 + b13, c02 + c13, d02 + d13)
}

// A block's weight values as the integer kernels consume them: unsigned (0..31) where the type has
// an unsigned form, else (Q8_0) the signed values. Unpacked once per block step and used for every
// activation row of a tile.
template <typename Type>
DI_AVX2 inline __m256i kernel_values(const uint8_t* block) {
  if constexpr (Type::kOffset < 0) {
    return Type::values(block);
  } else {
    return Type::unsigned_values(block);
  }
}

// 16 int16 pair sums of a block's weight values v (kernel_values) times the activations y:
// unsigned values with maddubs directly, minus kOffset * (y pair sums), which `offset_pairs` holds
// (shared by the rows); Q8_0's signed values lend their sign to y. Bounds: |31 * 127 * 2| + 16 *
// 127 * 2 < 2^15, and 128 * 127 * 2 < 2^15, so maddubs never saturates and the integer sums equal
// the scalar kernel's.
template <typename Type>
DI_AVX2 inline __m256i block_pair_sums(__m256i v, __m256i y, __m256i offset_pairs) {
  if constexpr (Type::kOffset < 0) {
    return _mm256_maddubs_epi16(_mm256_sign_epi8(v, v), _mm256_sign_epi8(y, v));
  } else if constexpr (Type::kOffset > 0) {
    return _mm256_sub_epi16(_mm256_maddubs_epi16(v, y), offset_pairs);
  } else {
    return _mm256_maddubs_epi16(v, y);
  }
}

constexpr int64_t kPrefetchGroups = 1;  // how many groups of four rows ahead

// The four interleaved row streams defeat the hardware prefetchers (measured: half the speed of one
// row at a time on weights out of cache), so each block step fetches its share of the next four
// rows (contiguous, 4 * row_bytes on) ahead.
DI_AVX2 inline void prefetch_next_rows(const uint8_t* ahead, int bytes) {
  for (int line = 0; line < bytes; line += 64) _mm_prefetch(reinterpret_cast<const char*>(ahead + line), _MM_HINT_T0);
}

// The f16 fields of four blocks `stride` bytes apart, as f32 (exact, as load_f16).
DI_AVX2 inline __m128 load_f16x4(const uint8_t* block, int64_t stride) {
  uint16_t bits[4];
  for (int k = 0; k < 4; ++k) std::memcpy(&bits[k], block + k * stride, sizeof bits[k]);
  return _mm_cvtph_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(bits)));
}

// Lane k of v in all 8 lanes.
DI_AVX2 inline __m256 lane(__m128 v, int k) {
  return _mm256_permutevar8x32_ps(_mm256_castps128_ps256(v), _mm256_set1_epi32(k));
}

// The f32 terms of one block step of tile row j: the four weight rows' scales times the activation
// block's (one mul for the four: each lane is the scalar product d_w * d_x), each broadcast to its
// row's int32 sums; and Q4_1/Q5_1's four min terms (m_w * sum_x, each an fma) in one lane-wise fma.
template <typename Type>
DI_AVX2 inline void add_tile_terms(__m128 weight_scales, __m128 weight_mins, const Q8Block& x, const __m256i (&sums)[4],
                                   __m256 (&acc)[4], __m128& mins) {
  const __m128 scales = _mm_mul_ps(weight_scales, _mm_set1_ps(x.d));
  for (int k = 0; k < 4; ++k) acc[k] = _mm256_fmadd_ps(lane(scales, k), _mm256_cvtepi32_ps(sums[k]), acc[k]);
  if (Type::kHasMin) mins = _mm_fmadd_ps(weight_mins, _mm_set1_ps(x.sum), mins);
}

// The tile's outputs: out[4 j + k] = weight row k against activation row j, each row's 8 lanes
// summed in horizontal_sum's order plus its min term.
template <int kRows>
DI_AVX2 inline void store_tile(const __m256 (&acc)[kRows][4], const __m128 (&mins)[kRows], float* out) {
  for (int j = 0; j < kRows; ++j) {
    _mm_storeu_ps(out + 4 * j, _mm_add_ps(horizontal_sums4(acc[j][0], acc[j][1], acc[j][2], acc[j][3]), mins[j]));
  }
}

// One block step's four weight blocks, unpacked once for the tile's activation rows: their values
// (kernel_values), scales and (Q4_1/Q5_1) mins.
struct WeightStep {
  __m256i values[4];
  __m128 scales;
  __m128 mins;
};

// Block b of the four rows from w; decode (kRows = 1) also prefetches its share of the next four rows.
template <typename Type, int kRows>
DI_AVX2 inline WeightStep load_weight_step(const uint8_t* w, int64_t row_bytes, int64_t b) {
  if constexpr (kRows == 1) prefetch_next_rows(w + kPrefetchGroups * 4 * row_bytes + b * 4 * Type::kBytes, 4 * Type::kBytes);
  const uint8_t* blocks = w + b * Type::kBytes;
  WeightStep step;
  for (int k = 0; k < 4; ++k) step.values[k] = kernel_values<Type>(blocks + k * row_bytes);
  step.scales = load_f16x4(blocks, row_bytes);
  step.mins = Type::kHasMin ? load_f16x4(blocks + 2, row_bytes) : _mm_setzero_ps();
  return step;
}

template <int kRows>
DI_AVX2 inline void zero_tile(__m256 (&acc)[kRows][4], __m128 (&mins)[kRows]) {
  for (int j = 0; j < kRows; ++j) {
    for (int k = 0; k < 4; ++k) acc[j][k] = _mm256_setzero_ps();
    mins[j] = _mm_setzero_ps();
  }
}

// Four consecutive weight rows (row_bytes apart) against kRows activation rows. kRows = 1 is the
// decode kernel: the activation block is loaded once for the four rows, four independent FMA
// chains, the next four rows prefetched. kRows > 1 is prefill's tile: each weight block is
// unpacked once for the kRows rows, each activation block loaded once for the four weight rows.
// Every (weight row, activation row) pair runs the same operations in the same order whatever
// kRows is, so a product does not depend on the tile (or batch) it was computed in.
template <typename Type, int kRows>
DI_AVX2 void dot_weight_tile(const uint8_t* w, int64_t row_bytes, const void* const* act, int64_t n_blocks, float* out) {
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 acc[kRows][4];
  __m128 mins[kRows];
  zero_tile<kRows>(acc, mins);
  for (int64_t b = 0; b < n_blocks; ++b) {
    const WeightStep step = load_weight_step<Type, kRows>(w, row_bytes, b);
    const __m256i(&v)[4] = step.values;
    for (int j = 0; j < kRows; ++j) {
      const Q8Block& x = static_cast<const Q8Block*>(act[j])[b];
      const __m256i y = load32(x.qs);
      const __m256i offset_pairs = Type::kOffset > 0
                                       ? _mm256_maddubs_epi16(_mm256_set1_epi8(static_cast<char>(Type::kOffset)), y)
                                       : _mm256_setzero_si256();
      __m256i sums[4];
      for (int k = 0; k < 4; ++k) sums[k] = _mm256_madd_epi16(block_pair_sums<Type>(v[k], y, offset_pairs), ones);
      add_tile_terms<Type>(step.scales, step.mins, x, sums, acc[j], mins[j]);
    }
  }
  store_tile<kRows>(acc, mins, out);
}

template <typename Type>
DI_AVX2 void dot_weight_rows4(const uint8_t* w, int64_t row_bytes, const void* act, int64_t n_blocks, float* out) {
  dot_weight_tile<Type, 1>(w, row_bytes, &act, n_blocks, out);
}

// The same kernels where the CPU has AVX512-VNNI (with VL: the 256-bit forms): vpdpbusd adds four
// unsigned × signed byte products into each int32 lane, replacing maddubs + madd. The int32 sums
// are the same (the int16 step never saturated, see block_pair_sums), so the result is the AVX2
// kernel's bit for bit. Q4_0/Q5_0's -kOffset · (activation sums) is the start value of the sums.
// With 32 vector registers the prefill tile can be 4 × 4 (16 accumulators).
#define DI_AVX2_VNNI __attribute__((target("avx2,fma,f16c,avx512f,avx512vl,avx512vnni")))

template <typename Type, int kRows>
DI_AVX2_VNNI void dot_weight_tile_vnni(const uint8_t* w, int64_t row_bytes, const void* const* act, int64_t n_blocks,
                                       float* out) {
  const __m256i zero = _mm256_setzero_si256();
  __m256 acc[kRows][4];
  __m128 mins[kRows];
  zero_tile<kRows>(acc, mins);
  for (int64_t b = 0; b < n_blocks; ++b) {
    const WeightStep step = load_weight_step<Type, kRows>(w, row_bytes, b);
    const __m256i(&v)[4] = step.values;
    for (int j = 0; j < kRows; ++j) {
      const Q8Block& x = static_cast<const Q8Block*>(act[j])[b];
      const __m256i y = load32(x.qs);
      const __m256i start =
          Type::kOffset > 0
              ? _mm256_sub_epi32(zero, _mm256_dpbusd_epi32(zero, _mm256_set1_epi8(static_cast<char>(Type::kOffset)), y))
              : zero;
      __m256i sums[4];
      for (int k = 0; k < 4; ++k) {
        if constexpr (Type::kOffset < 0) {  // signed values lend their sign to y, as block_pair_sums
          sums[k] = _mm256_dpbusd_epi32(zero, _mm256_sign_epi8(v[k], v[k]), _mm256_sign_epi8(y, v[k]));
        } else {
          sums[k] = _mm256_dpbusd_epi32(start, v[k], y);
        }
      }
      add_tile_terms<Type>(step.scales, step.mins, x, sums, acc[j], mins[j]);
    }
  }
  store_tile<kRows>(acc, mins, out);
}

template <typename Type>
DI_AVX2_VNNI void dot_weight_rows4_vnni(const uint8_t* w, int64_t row_bytes, const void* act, int64_t n_blocks,
                                        float* out) {
  dot_weight_tile_vnni<Type, 1>(w, row_bytes, &act, n_blocks, out);
}

// Activation rows per prefill tile: AVX2 has 16 vector registers (2 × 4 accumulators, 4 weight
// blocks and the activation block fit), the VNNI variant's AVX-512 CPUs 32 (4 × 4).
constexpr int kAvx2TileRows = 2;
constexpr int kVnniTileRows = 4;

// Σ over the 4 groups of 64 of scale(sub-block) * Σ q * y, for Q4_K (qh null) and Q5_K.
DI_AVX2 inline __m256i k_scaled_sums(const uint8_t* nibbles, const uint8_t* qh, const uint8_t scales[8],
                                     const int8_t* y) {
  const __m256i low_mask = _mm256_set1_epi8(0x0F);
  const __m256i one = _mm256_set1_epi8(1);
  const __m256i high_bits = qh != nullptr ? load32(qh) : _mm256_setzero_si256();
  __m256i sum = _mm256_setzero_si256();
  for (int g = 0; g < 4; ++g) {
    const __m256i q = load32(nibbles + 32 * g);
    __m256i lo = _mm256_and_si256(q, low_mask);
    __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), low_mask);
    if (qh != nullptr) {
      const __m256i bit_lo = _mm256_and_si256(_mm256_srli_epi16(high_bits, 2 * g), one);
      const __m256i bit_hi = _mm256_and_si256(_mm256_srli_epi16(high_bits, 2 * g + 1), one);
      lo = _mm256_or_si256(lo, _mm256_slli_epi16(bit_lo, 4));
      hi = _mm256_or_si256(hi, _mm256_slli_epi16(bit_hi, 4));
    }
    const __m256i p_lo = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, load32(y + 64 * g)),
                                           _mm256_set1_epi16(scales[2 * g]));
    const __m256i p_hi = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, load32(y + 64 * g + 32)),
                                           _mm256_set1_epi16(scales[2 * g + 1]));
    sum = _mm256_add_epi32(sum, _mm256_add_epi32(p_lo, p_hi));
  }
  return sum;
}

// Σ min(sub-block) * Σ y over the sub-block, from the activation's 16-element sums.
inline int k_min_terms(const uint8_t mins[8], const int16_t* bsums) {
  int sum = 0;
  for (int j = 0; j < 8; ++j) sum += mins[j] * (bsums[2 * j] + bsums[2 * j + 1]);
  return sum;
}

// The k-quants as the 1-row and 4-weight-row kernels use them: `accumulate` adds one super-block's
// scaled integer sums to the row's 8 f32 lanes and its min (Q4_K/Q5_K) or -32 (Q6_K) term to
// `offset`, which the row's total subtracts. One definition for both kernels, so that a row rounds
// the same whichever computed it.
template <bool kFiveBit>
struct Q4or5K {
  static constexpr int kBytes = kFiveBit ? kQ5_KBytes : kQ4_KBytes;
  DI_AVX2 static void accumulate(const uint8_t* w, const Q8KBlock& x, __m256& acc, float& offset) {
    uint8_t scales[8];
    uint8_t mins[8];
    unpack_k_scales(w + 4, scales, mins);
    const uint8_t* qh = kFiveBit ? w + 16 : nullptr;
    const uint8_t* nibbles = kFiveBit ? w + 48 : w + 16;
    const __m256 sums = _mm256_cvtepi32_ps(k_scaled_sums(nibbles, qh, scales, x.qs));
    acc = _mm256_fmadd_ps(_mm256_set1_ps(load_f16(w) * x.d), sums, acc);
    offset += load_f16(w + 2) * x.d * static_cast<float>(k_min_terms(mins, x.bsums));
  }
};
using Q4K = Q4or5K<false>;
using Q5K = Q4or5K<true>;

// Σ scale * q * y over a Q6_K super-block with q unsigned (0..63); the -32 offset is applied by
// the caller through the activation's 16-element sums.
DI_AVX2 inline __m256i q6_k_scaled_sums(const uint8_t* w, const int8_t* y) {
  const __m256i low_mask = _mm256_set1_epi8(0x0F);
  const auto* scales = reinterpret_cast<const int8_t*>(w + 192);
  __m256i sum = _mm256_setzero_si256();
  for (int half = 0; half < 2; ++half) {
    const __m256i ql0 = load32(w + 64 * half);
    const __m256i ql1 = load32(w + 64 * half + 32);
    const __m256i qh = load32(w + 128 + 32 * half);
    const __m256i q[4] = {
        _mm256_or_si256(_mm256_and_si256(ql0, low_mask),
                        _mm256_slli_epi16(_mm256_and_si256(qh, _mm256_set1_epi8(0x03)), 4)),
        _mm256_or_si256(_mm256_and_si256(ql1, low_mask),
                        _mm256_slli_epi16(_mm256_and_si256(qh, _mm256_set1_epi8(0x0C)), 2)),
        _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), low_mask),
                        _mm256_and_si256(qh, _mm256_set1_epi8(0x30))),
        _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), low_mask),
                        _mm256_srli_epi16(_mm256_and_si256(qh, _mm256_set1_epi8(static_cast<char>(0xC0))), 2)),
    };
    for (int k = 0; k < 4; ++k) {
      const int8_t* sc = scales + 8 * half + 2 * k;
      const __m256i scale = _mm256_set_m128i(_mm_set1_epi16(sc[1]), _mm_set1_epi16(sc[0]));
      const __m256i products = _mm256_maddubs_epi16(q[k], load32(y + 128 * half + 32 * k));
      sum = _mm256_add_epi32(sum, _mm256_madd_epi16(products, scale));
    }
  }
  return sum;
}

struct Q6K {
  static constexpr int kBytes = kQ6_KBytes;
  DI_AVX2 static void accumulate(const uint8_t* w, const Q8KBlock& x, __m256& acc, float& offset) {
    const float d = load_f16(w + 208) * x.d;
    const auto* scales = reinterpret_cast<const int8_t*>(w + 192);
    int offset_sum = 0;
    for (int g = 0; g < 16; ++g) offset_sum += scales[g] * x.bsums[g];
    acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(q6_k_scaled_sums(w, x.qs)), acc);
    offset += d * static_cast<float>(32 * offset_sum);
  }
};

template <typename Type>
DI_AVX2 float dot_k(const uint8_t* w, const void* act, int64_t n_blocks) {
  const auto* x = static_cast<const Q8KBlock*>(act);
  __m256 acc = _mm256_setzero_ps();
  float offset = 0.0f;
  for (int64_t b = 0; b < n_blocks; ++b, w += Type::kBytes) Type::accumulate(w, x[b], acc, offset);
  return horizontal_sum(acc) - offset;
}

// Four consecutive weight rows of a k-quant against one activation row (decode), as
// dot_weight_rows4 for the 32-element types: four independent chains, the next rows prefetched.
template <typename Type>
DI_AVX2 void dot_k_weight_rows4(const uint8_t* w, int64_t row_bytes, const void* act, int64_t n_blocks, float* out) {
  const auto* x = static_cast<const Q8KBlock*>(act);
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  float offsets[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  const uint8_t* ahead = w + kPrefetchGroups * 4 * row_bytes;
  for (int64_t b = 0; b < n_blocks; ++b, ahead += 4 * Type::kBytes) {
    prefetch_next_rows(ahead, 4 * Type::kBytes);
    for (int k = 0; k < 4; ++k) Type::accumulate(w + k * row_bytes + b * Type::kBytes, x[b], acc[k], offsets[k]);
  }
  const __m128 totals = _mm_sub_ps(horizontal_sums4(acc[0], acc[1], acc[2], acc[3]), _mm_loadu_ps(offsets));
  _mm_storeu_ps(out, totals);
}

// pick(Type{}) for the 32-element type `type`, or nullptr for any other: one table for the kernels
// that exist per 32-element type.
template <typename Kernel, typename Pick>
Kernel for_32_element_type(io::GgmlType type, Pick pick) {
  switch (type) {
    case io::GgmlType::Q4_0: return pick(Q4_0{});
    case io::GgmlType::Q4_1: return pick(Q4_1{});
    case io::GgmlType::Q5_0: return pick(Q5_0{});
    case io::GgmlType::Q5_1: return pick(Q5_1{});
    case io::GgmlType::Q8_0: return pick(Q8_0{});
    default: return Kernel{};
  }
}

}  // namespace

RowDot avx2_dot(io::GgmlType type) {
  switch (type) {
    case io::GgmlType::Q4_K: return dot_k<Q4K>;
    case io::GgmlType::Q5_K: return dot_k<Q5K>;
    case io::GgmlType::Q6_K: return dot_k<Q6K>;
    default: return for_32_element_type<RowDot>(type, [](auto t) -> RowDot { return dot_one<decltype(t)>; });
  }
}

RowDot4 avx2_dot4(io::GgmlType type) {
  return for_32_element_type<RowDot4>(type, [](auto t) -> RowDot4 { return dot_four<decltype(t)>; });
}

WeightTile avx2_weight_tile(io::GgmlType type) {
  return for_32_element_type<WeightTile>(type, [](auto t) -> WeightTile {
    return {dot_weight_tile<decltype(t), kAvx2TileRows>, kAvx2TileRows};
  });
}

WeightTile avx2_vnni_weight_tile(io::GgmlType type) {
  return for_32_element_type<WeightTile>(type, [](auto t) -> WeightTile {
    return {dot_weight_tile_vnni<decltype(t), kVnniTileRows>, kVnniTileRows};
  });
}

// The k-quants scale 16-bit pair sums (no plain vpdpbusd): their AVX2 kernel serves.
WeightRowsDot4 avx2_vnni_weight_rows_dot4(io::GgmlType type) {
  return for_32_element_type<WeightRowsDot4>(
      type, [](auto t) -> WeightRowsDot4 { return dot_weight_rows4_vnni<decltype(t)>; });
}

WeightRowsDot4 avx2_weight_rows_dot4(io::GgmlType type) {
  switch (type) {
    case io::GgmlType::Q4_K: return dot_k_weight_rows4<Q4K>;
    case io::GgmlType::Q5_K: return dot_k_weight_rows4<Q5K>;
    case io::GgmlType::Q6_K: return dot_k_weight_rows4<Q6K>;
    default:
      return for_32_element_type<WeightRowsDot4>(
          type, [](auto t) -> WeightRowsDot4 { return dot_weight_rows4<decltype(t)>; });
  }
}

}  // namespace deltainfer::backend::cpu::quant

#else  // not x86: no AVX2 variants

namespace deltainfer::backend::cpu::quant {
RowDot avx2_dot(io::GgmlType) { return nullptr; }
RowDot4 avx2_dot4(io::GgmlType) { return nullptr; }
WeightRowsDot4 avx2_weight_rows_dot4(io::GgmlType) { return nullptr; }
WeightRowsDot4 avx2_vnni_weight_rows_dot4(io::GgmlType) { return nullptr; }
WeightTile avx2_weight_tile(io::GgmlType) { return {}; }
WeightTile avx2_vnni_weight_tile(io::GgmlType) { return {}; }
}  // namespace deltainfer::backend::cpu::quant

#endif
