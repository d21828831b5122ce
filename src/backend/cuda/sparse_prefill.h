#pragma once
// Sparse prefill attention on the GPU (Hopper, sm_90a): the dense prefill kernel's layouts and
// arguments (PrefillAttentionArgs: paged bf16 KV, GQA, head dim 64/128, optional f32 LSE), but
// each 128-row query block visits only some 64-key blocks; masks run on the boundary tiles only.
//
//   sliding window + sink: query at position p attends keys j <= p with j < sink or
//     j > p - window (window >= 1, sink >= 0; window >= kv_len is dense causal attention).
//   block-sparse ("vertical-slash", MInference-style): per (query head h, query block qb of
//     kSparseQueryBlock rows of the call) an ascending, duplicate-free list of 64-key block
//     indices, CSR: indices[offsets[h * n_qblocks + qb] .. offsets[h * n_qblocks + qb + 1]),
//     n_qblocks = ceil(n_q / kSparseQueryBlock); causal masking still applies inside the blocks.
//     Every query row must see at least one key: include the block of each row's own position
//     (the diagonal); a row without keys gets a non-finite output.
//
// Optional fused delta correction (METHODS.md section 1, "propagate"): with `fused.dense_rows`
// set to the dense outputs of the rows at positions 0, gamma, 2 gamma, ... of this call
// ([ceil(n_q / gamma)][n_heads][head_dim], e.g. from prefill_attention with q_pos, see
// delta_correct.h), the epilogue writes o^s_i + (o^d_r - o^s_r), r = gamma * floor(pos_i / gamma),
// and o^d_r on the rows r. Needs gamma in {16, 32, 64}, contiguous queries (q_pos == nullptr)
// and first_pos % gamma == 0. The LSE output stays that of the sparse pass.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "backend/cuda/prefill_attention.h"

namespace deltainfer::cuda {

inline constexpr int kSparseQueryBlock = 128;
inline constexpr int kSparseKeyBlock = 64;

struct DeltaFusion {
  const __nv_bfloat16* dense_rows = nullptr;  // nullptr: no correction
  int gamma = 0;
};

struct BlockSparseLists {
  const int32_t* offsets = nullptr;  // [n_heads * n_qblocks + 1]
  const int32_t* indices = nullptr;  // 64-key block indices
};

// Launch on `stream` without synchronizing. Throw InputError for unsupported shapes or
// parameters, and for devices without wgmma; Error when a launch fails.
// kernel: kSm90 runs the v3 kernel, kSm90Ws the FlashAttention-3 style one (same schedule, masks
// and fused epilogue), kAuto the FA3-style one when auto_prefill_kernel() is kSm90Ws and v3
// otherwise; kSm80 has no sparse modes (InputError).
void sliding_prefill_attention(const PrefillAttentionArgs& args, int window, int sink,
                               cudaStream_t stream, const DeltaFusion& fused = {},
                               PrefillKernel kernel = PrefillKernel::kAuto);
void block_sparse_prefill_attention(const PrefillAttentionArgs& args,
                                    const BlockSparseLists& lists, cudaStream_t stream,
                                    const DeltaFusion& fused = {},
                                    PrefillKernel kernel = PrefillKernel::kAuto);

}  // namespace deltainfer::cuda
