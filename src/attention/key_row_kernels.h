#pragma once
// The inner loops of one query row's attention (decode, and the Δ rows of prefill) over a run of
// keys that stays inside one KV page (consecutive rows of head_dim floats):
//   score_key_run:        scores[j] = scale * (q · keys[j])                 for j in [0, count)
//   accumulate_value_run: out[c] += sum_j probabilities[j] * values[j][c]   (keys with p == 0 skipped)
// The AVX2+FMA variant (picked at run time, for head_dim a multiple of 8) scores 4 keys at once and
// keeps the output row in registers; the build targets plain x86-64, so the portable loops get SSE
// at best, and these two loops were ~16% of a 2-thread SmolLM2 decode step (perf). The variants
// differ only in the order of the f32 sums: unit test against the scalar twin at 1e-5 relative.
#include <cstdint>

namespace deltainfer::attention {

void score_key_run(const float* q, const float* keys, int64_t count, int64_t head_dim, float scale, float* scores);
void accumulate_value_run(const float* probabilities, const float* values, int64_t count, int64_t head_dim,
                          float* out);

// The portable variants (the twins the tests compare against).
void score_key_run_scalar(const float* q, const float* keys, int64_t count, int64_t head_dim, float scale,
                          float* scores);
void accumulate_value_run_scalar(const float* probabilities, const float* values, int64_t count, int64_t head_dim,
                                 float* out);

}  // namespace deltainfer::attention
