#pragma once
// The FP8 KV page format (--kv-dtype fp8) and its CPU twin: quantize on append, dequantize on read.
//
// Layout, per layer and separately for K and for V (the bf16 pool's indexing, one byte a value):
//   codes  [pool pages][n_kv_heads][kKvPageTokens][head_dim] e4m3 (core/fp8_e4m3.h)
//   scales [pool pages][n_kv_heads] f32
// Row r of a (page, KV head) slab holds the values codes[r][d] * scale.
//
// Scale: the smallest power of two s with amax <= 448 * s, where amax is the largest finite
// magnitude of the rows appended to the slab so far (0 while they are all zero or non-finite).
// A page filled over several appends (decode adds one row at a time) whose later rows have a
// larger amax is rescaled on append: s grows by 2^k and the slab's earlier codes are divided by
// 2^k. For codes that stay normal that is exact and gives the very codes quantizing those rows
// with the new scale would; codes that fall into the subnormal range are rounded once more. The
// scale never shrinks within a page. An append that starts at row 0 starts the slab anew: the pool
// page may still hold an earlier sequence's rows and scale, which are never read.
// Why a power of two rather than amax / 448: e4m3's relative precision does not depend on the
// scale, so rounding it up costs at most one binade of subnormal headroom; in exchange rescaling
// is exact, where an exact amax / 448 would re-round every earlier row at every growth of amax.
//
// Error, for a finite value x stored in a slab of scale s (e4m3: 3 mantissa bits, subnormal step
// 2^-9): |stored - x| <= 2^-4 |x| + 2^-10 s when the slab was never rescaled after x was written,
// and <= 2^-4 |x| + 2^-9 s when it was. Non-finite values (NaN, +-inf) are stored as NaN and do
// not count towards amax, so one bad value neither hides itself nor crushes its page's other rows.
#include <math.h>  // frexpf/ldexpf: the same calls in host and device code

#include <cstdint>

#ifdef __CUDACC__
#define DELTAINFER_HOST_DEVICE __host__ __device__
#else
#define DELTAINFER_HOST_DEVICE
#endif

namespace deltainfer {

// One (page, KV head) of one FP8 pool, K or V.
struct Fp8PageSlab {
  uint8_t* codes = nullptr;  // [kKvPageTokens][head_dim]
  float* scale = nullptr;
  int head_dim = 0;
};

// The slab scale for rows whose largest finite magnitude is `amax` (>= 0): a power of two, at
// least 2^-126 (so its inverse is finite), 0 for amax 0. Shared by this twin and the CUDA append.
DELTAINFER_HOST_DEVICE inline float fp8_page_scale_for(float amax) {
  if (!(amax > 0.0f)) return 0.0f;
  // amax = fraction * 2^exponent with fraction in [0.5, 1), and 448 = 0.875 * 2^9, so the smallest
  // e with amax <= 448 * 2^e is exponent - 9, or one more when fraction > 0.875.
  int exponent = 0;
  const float fraction = frexpf(amax, &exponent);
  const int scale_exponent = exponent - 9 + (fraction > 0.875f ? 1 : 0);
  constexpr int kMinScaleExponent = -126;  // the smallest normal f32: 1 / scale stays finite
  return ldexpf(1.0f, scale_exponent > kMinScaleExponent ? scale_exponent : kMinScaleExponent);
}

// Quantizes rows[n_rows][head_dim] into slab rows first_row.. (all inside the page), rescaling
// the slab's rows 0..first_row-1 when their scale is too small for the new rows.
void fp8_append_rows(const Fp8PageSlab& slab, int first_row, const float* rows, int n_rows);

// values[i] = decode(codes[i]) * scale, for n values.
void fp8_dequantize(const uint8_t* codes, float scale, int64_t n, float* values);

// One layer's FP8 pool (K or V) of the paged cache.
struct Fp8Pool {
  uint8_t* codes = nullptr;  // [pool pages][n_kv_heads][kKvPageTokens][head_dim]
  float* scales = nullptr;   // [pool pages][n_kv_heads]
  int n_kv_heads = 0;
  int head_dim = 0;

  Fp8PageSlab slab(int64_t page, int kv_head) const;
};

// The CPU twin of the paged KV append: writes rows[n_positions][n_kv_heads][head_dim] at the
// sequence's positions first_position.. (logical page p is pool page page_table[p]), one append
// per touched (page, KV head).
void fp8_append_positions(const Fp8Pool& pool, const int32_t* page_table, int64_t first_position,
                          int64_t n_positions, const float* rows);

}  // namespace deltainfer
