#pragma once
// Delta correction of a sparse prefill (METHODS.md section 1) on the GPU, and the two helpers of
// its dense pass. Rows are token rows of `row_elems` bf16 values (n_heads * head_dim), a chunk of
// n_q contiguous query positions first_pos, first_pos + 1, ...; the strided rows are those at
// positions that are multiples of gamma, and the chunk must start at one (first_pos % gamma == 0),
// so the chunk has strided_row_count(n_q, gamma) of them, at rows 0, gamma, 2 gamma, ...
//
// The dense pass: gather_strided_rows(q) -> compacted queries, strided_positions -> their
// positions, prefill_attention(..., q_pos = positions, n_q = count) -> dense_rows (o^d_r).
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <vector>

#include "backend/cuda/prefill_attention.h"

namespace deltainfer::cuda {

enum class DeltaMode {
  kPropagate,    // o_i = o^s_i + (o^d_r - o^s_r), r = gamma * floor(i / gamma); rows r = o^d_r
  kRecompute,    // only rows r are replaced by o^d_r (ablation)
  kInterpolate,  // linear blend of the deltas of r and r + gamma (reads a later row: not
                 // causal, ablation only); rows past the last strided row use delta_r
};

struct DeltaCorrectArgs {
  const __nv_bfloat16* sparse = nullptr;      // o^s, [n_q][row_elems]
  const __nv_bfloat16* dense_rows = nullptr;  // o^d, [strided_row_count][row_elems]
  __nv_bfloat16* out = nullptr;  // [n_q][row_elems]; may be `sparse` except for kInterpolate
  int n_q = 0;
  int first_pos = 0;
  int gamma = 64;
  int row_elems = 0;  // multiple of 8
  DeltaMode mode = DeltaMode::kPropagate;
};

inline int strided_row_count(int n_q, int gamma) { return (n_q + gamma - 1) / gamma; }

// Launch on `stream` without synchronizing; InputError for bad arguments, Error on launch failure.
void delta_correct(const DeltaCorrectArgs& args, cudaStream_t stream);

// The correction of several chunks of one packed batch at once (varlen, prefill_attention.h):
// chunk c's rows are rows [c.q_row, c.q_row + c.n_q) of base.sparse and base.out at positions
// c.first_pos.. (a multiple of gamma), its dense rows start at row c.delta_row of
// base.dense_rows; base's n_q and first_pos are unused. Equals delta_correct per chunk; one
// launch per kMaxVarlenChunks chunks. Interpolate needs base.out apart from base.sparse (same
// row layout).
void delta_correct_varlen(const DeltaCorrectArgs& base, const std::vector<VarlenChunk>& chunks,
                          cudaStream_t stream);

// strided[k] = rows[k * gamma] for k < strided_row_count(n_q, gamma).
void gather_strided_rows(const __nv_bfloat16* rows, int n_q, int row_elems, int gamma,
                         __nv_bfloat16* strided, cudaStream_t stream);

// positions[k] = first_pos + k * gamma for k < strided_row_count(n_q, gamma).
void strided_positions(int n_q, int first_pos, int gamma, int32_t* positions, cudaStream_t stream);

// The dense pass of several chunks of one packed `rows` at once (varlen, prefill_attention.h):
// chunk c's strided rows rows[c.q_row + k * gamma] go to strided[c.delta_row + k] and their
// positions c.first_pos + k * gamma to positions[c.delta_row + k], k < strided_row_count(c.n_q,
// gamma). Every chunk must start at a multiple of gamma; one launch per kMaxVarlenChunks chunks.
void gather_strided_rows_varlen(const __nv_bfloat16* rows, const std::vector<VarlenChunk>& chunks, int row_elems,
                                int gamma, __nv_bfloat16* strided, int32_t* positions, cudaStream_t stream);

}  // namespace deltainfer::cuda
