#pragma once
// Δ correction of a sparse prefill (METHODS.md section 1), applied to one chunk of one layer.
// Strided rows r = 0, γ, 2γ, ... get their dense output exactly; every other row i gets
//   delta:       o^s_i + Δ_r, r = γ⌊i/γ⌋ (causal: r <= i)
//   recompute:   o^s_i (only the rows r change)
//   interpolate: o^s_i + (1 - t) Δ_r + t Δ_{r+γ}, t = (i - r) / γ, when row r + γ is in this chunk;
//                otherwise o^s_i + Δ_r (the later row is not known yet). Not causal: ablation only.
// Δ_r = o^d_r - o^s_r. A chunk may start inside a γ-block: the Δ of the last strided row of the
// previous chunk is carried, so chunked prefill equals prefill at once (delta and recompute).
#include <cstdint>
#include <vector>

#include "attention/attention_config.h"

namespace deltainfer::attention {

// Δ of the latest strided row seen by a layer ([n_heads][head_dim]); row < 0: none.
struct DeltaCarry {
  int64_t row = -1;
  std::vector<float> delta;
};

// Strided rows r in [first_pos, first_pos + n): the first and how many.
struct StridedRows {
  int64_t first = 0;
  int64_t count = 0;
};
StridedRows strided_rows(int64_t gamma, int64_t first_pos, int64_t n);

// The rows of a chunk [first_pos, first_pos + n) that are in the dense tail of a prefill ending at
// prompt_end (the last config.dense_tail rows): [begin, end), empty when begin == end.
struct RowRange {
  int64_t begin = 0;
  int64_t end = 0;
};
RowRange dense_tail_rows(const PrefillConfig& config, int64_t first_pos, int64_t n, int64_t prompt_end);

// out: sparse outputs [n][row_width] of rows first_pos..; dense: dense outputs of the strided
// rows [count][row_width]. Corrects out in place and updates carry.
void apply_delta_correction(const PrefillConfig& config, int64_t row_width, int64_t first_pos, int64_t n,
                            const float* dense, float* out, DeltaCarry& carry);

}  // namespace deltainfer::attention
