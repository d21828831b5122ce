#include "attention/key_row_kernels.h"

#include "core/cpu_features.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define DI_HAVE_X86 1
#define DI_AVX2 __attribute__((target("avx2,fma")))
#endif

namespace deltainfer::attention {
namespace {

// Dot product with 8 independent partial sums: the compiler vectorizes them (a single running sum
// would be one dependent chain, since f32 addition may not be reordered).
float dot(const float* a, const float* b, int64_t n) {
  float partial[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int lane = 0; lane < 8; ++lane) partial[lane] += a[i + lane] * b[i + lane];
  }
  for (; i < n; ++i) partial[i % 8] += a[i] * b[i];
  return ((partial[0] + partial[4]) + (partial[1] + partial[5])) + ((partial[2] + partial[6]) + (partial[3] + partial[7]));
}

#if DI_HAVE_X86
DI_AVX2 __m256 dot_lanes(const float* q, const float* key, int64_t d) {
  __m256 even = _mm256_setzero_ps(), odd = _mm256_setzero_ps();
  int64_t c = 0;
  for (; c + 16 <= d; c += 16) {
    even = _mm256_fmadd_ps(_mm256_loadu_ps(q + c), _mm256_loadu_ps(key + c), even);
    odd = _mm256_fmadd_ps(_mm256_loadu_ps(q + c + 8), _mm256_loadu_ps(key + c + 8), odd);
  }
  if (c < d) even = _mm256_fmadd_ps(_mm256_loadu_ps(q + c), _mm256_loadu_ps(key + c), even);
  return _mm256_add_ps(even, odd);
}

// The four horizontal sums of a, b, c, e as one vector [sum a, sum b, sum c, sum e].
DI_AVX2 __m128 horizontal_sums4(__m256 a, __m256 b, __m256 c, __m256 e) {
  const __m256 sums = _mm256_hadd_ps(_mm256_hadd_ps(a, b), _mm256_hadd_ps(c, e));
  return _mm_add_ps(_mm256_castps256_ps128(sums), _mm256_extractf128_ps(sums, 1));
}

DI_AVX2 void score_key_run_avx2(const float* q, const float* keys, int64_t count, int64_t d, float scale,
                                float* scores) {
  const __m128 scale4 = _mm_set1_ps(scale);
  int64_t j = 0;
  // Four keys at a time: four independent chains, and one combined horizontal sum for the four.
  for (; j + 4 <= count; j += 4) {
    const float* key = keys + j * d;
    const __m128 sums = horizontal_sums4(dot_lanes(q, key, d), dot_lanes(q, key + d, d), dot_lanes(q, key + 2 * d, d),
                                         dot_lanes(q, key + 3 * d, d));
    _mm_storeu_ps(scores + j, _mm_mul_ps(scale4, sums));
  }
  for (; j < count; ++j) {
    const __m256 zero = _mm256_setzero_ps();
    scores[j] = scale * _mm_cvtss_f32(horizontal_sums4(dot_lanes(q, keys + j * d, d), zero, zero, zero));
  }
}

// Up to 64 output columns stay in 8 registers while the keys stream past.
DI_AVX2 void accumulate_value_run_avx2(const float* probabilities, const float* values, int64_t count, int64_t d,
                                       float* out) {
  constexpr int64_t kColumns = 64;
  for (int64_t c0 = 0; c0 < d; c0 += kColumns) {
    const int lanes = static_cast<int>((d - c0 < kColumns ? d - c0 : kColumns) / 8);
    __m256 acc[8];
    for (int k = 0; k < lanes; ++k) acc[k] = _mm256_loadu_ps(out + c0 + 8 * k);
    for (int64_t j = 0; j < count; ++j) {
      if (probabilities[j] == 0.0f) continue;  // keys the rule rejects
      const __m256 p = _mm256_set1_ps(probabilities[j]);
      const float* row = values + j * d + c0;
      for (int k = 0; k < lanes; ++k) acc[k] = _mm256_fmadd_ps(p, _mm256_loadu_ps(row + 8 * k), acc[k]);
    }
    for (int k = 0; k < lanes; ++k) _mm256_storeu_ps(out + c0 + 8 * k, acc[k]);
  }
}

bool use_avx2(int64_t head_dim) { return cpu_has_avx2_fma() && head_dim % 8 == 0; }
#endif

}  // namespace

void score_key_run_scalar(const float* q, const float* keys, int64_t count, int64_t head_dim, float scale,
                          float* scores) {
  for (int64_t j = 0; j < count; ++j) scores[j] = scale * dot(q, keys + j * head_dim, head_dim);
}

void accumulate_value_run_scalar(const float* probabilities, const float* values, int64_t count, int64_t head_dim,
                                 float* out) {
  for (int64_t j = 0; j < count; ++j) {
    const float p = probabilities[j];
    if (p == 0.0f) continue;  // keys the rule rejects
    const float* row = values + j * head_dim;
    for (int64_t c = 0; c < head_dim; ++c) out[c] += p * row[c];
  }
}

void score_key_run(const float* q, const float* keys, int64_t count, int64_t head_dim, float scale, float* scores) {
#if DI_HAVE_X86
  if (use_avx2(head_dim)) return score_key_run_avx2(q, keys, count, head_dim, scale, scores);
#endif
  score_key_run_scalar(q, keys, count, head_dim, scale, scores);
}

void accumulate_value_run(const float* probabilities, const float* values, int64_t count, int64_t head_dim,
                          float* out) {
#if DI_HAVE_X86
  if (use_avx2(head_dim)) return accumulate_value_run_avx2(probabilities, values, count, head_dim, out);
#endif
  accumulate_value_run_scalar(probabilities, values, count, head_dim, out);
}

}  // namespace deltainfer::attention
