#include "core/vector_math.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "core/cpu_features.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define DI_HAVE_X86 1
#define DI_AVX2 __attribute__((target("avx2,fma")))
#endif

namespace deltainfer {
namespace {

#if DI_HAVE_X86
// exp(x) below this is subnormal in f32 (or 0): returned as exactly 0. Above kOverflow it is +inf.
constexpr float kUnderflow = -87.336544750553102f;  // ln(2^-126)
constexpr float kOverflow = 88.722839052068035f;    // ln(f32 max)

// Cephes' expf: x = n ln2 + r with |r| <= ln2 / 2 (ln2 split in two so that n ln2 is exact),
// exp(r) by a degree-7 polynomial, then 2^n assembled in the exponent bits. 2^n is applied in
// two halves so that n = 128 (x just below kOverflow) and n = -126 stay representable.
DI_AVX2 __m256 exp_avx2(__m256 x) {
  const __m256 clamped = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(kUnderflow)), _mm256_set1_ps(kOverflow));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(clamped, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), clamped);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  const __m256i whole = _mm256_cvtps_epi32(n);
  const __m256i half = _mm256_srai_epi32(whole, 1);
  const __m256i rest = _mm256_sub_epi32(whole, half);
  const __m256i bias = _mm256_set1_epi32(127);
  const __m256 scale_half = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(half, bias), 23));
  const __m256 scale_rest = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(rest, bias), 23));
  __m256 result = _mm256_mul_ps(_mm256_mul_ps(p, scale_half), scale_rest);
  // The edges the contract names: 0 below kUnderflow (also for -inf), +inf above kOverflow, NaN kept.
  result = _mm256_andnot_ps(_mm256_cmp_ps(x, _mm256_set1_ps(kUnderflow), _CMP_LT_OQ), result);
  result = _mm256_blendv_ps(result, _mm256_set1_ps(std::numeric_limits<float>::infinity()),
                            _mm256_cmp_ps(x, _mm256_set1_ps(kOverflow), _CMP_GT_OQ));
  return _mm256_blendv_ps(result, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
}

DI_AVX2 __m256d add_as_double(__m256d sum, __m256 v) {
  sum = _mm256_add_pd(sum, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
  return _mm256_add_pd(sum, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
}

// Applies op(8 lanes) to x in place; a tail of fewer than 8 goes through a padded copy, so every
// element takes the same path whatever its position.
template <typename Op>
DI_AVX2 void for_each_8(float* x, int64_t n, float pad, Op&& op) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, op(_mm256_loadu_ps(x + i), i, 8));
  if (i < n) {
    float tail[8];
    std::fill(tail, tail + 8, pad);
    const auto rest = static_cast<size_t>(n - i);
    std::memcpy(tail, x + i, rest * sizeof(float));
    _mm256_storeu_ps(tail, op(_mm256_loadu_ps(tail), i, static_cast<int>(rest)));
    std::memcpy(x + i, tail, rest * sizeof(float));
  }
}

DI_AVX2 double exp_shifted_avx2(float* x, int64_t n, float shift) {
  const __m256 shift8 = _mm256_set1_ps(shift);
  __m256d sum = _mm256_setzero_pd();
  // Padding with -inf gives exp = 0: the tail's unused lanes add nothing to the sum.
  for_each_8(x, n, -std::numeric_limits<float>::infinity(), [&](__m256 v, int64_t, int) DI_AVX2 {
    const __m256 e = exp_avx2(_mm256_sub_ps(v, shift8));
    sum = add_as_double(sum, e);
    return e;
  });
  __m128d pair = _mm_add_pd(_mm256_castpd256_pd128(sum), _mm256_extractf128_pd(sum, 1));
  pair = _mm_add_sd(pair, _mm_unpackhi_pd(pair, pair));
  return _mm_cvtsd_f64(pair);
}

DI_AVX2 void silu_multiply_avx2(float* gate, const float* up, int64_t n) {
  const __m256 one = _mm256_set1_ps(1.0f);
  for_each_8(gate, n, 0.0f, [&](__m256 g, int64_t i, int lanes) DI_AVX2 {
    float up8[8] = {};
    std::memcpy(up8, up + i, static_cast<size_t>(lanes) * sizeof(float));
    const __m256 e = exp_avx2(_mm256_sub_ps(_mm256_setzero_ps(), g));
    return _mm256_mul_ps(_mm256_div_ps(g, _mm256_add_ps(one, e)), _mm256_loadu_ps(up8));
  });
}
#endif

}  // namespace

double exp_shifted_in_place_scalar(float* x, int64_t n, float shift) {
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - shift);
    sum += x[i];
  }
  return sum;
}

void silu_multiply_scalar(float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) gate[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

double exp_shifted_in_place(float* x, int64_t n, float shift) {
#if DI_HAVE_X86
  if (cpu_has_avx2_fma()) return exp_shifted_avx2(x, n, shift);
#endif
  return exp_shifted_in_place_scalar(x, n, shift);
}

void silu_multiply(float* gate, const float* up, int64_t n) {
#if DI_HAVE_X86
  if (cpu_has_avx2_fma()) return silu_multiply_avx2(gate, up, n);
#endif
  silu_multiply_scalar(gate, up, n);
}

}  // namespace deltainfer
