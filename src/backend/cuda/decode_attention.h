#pragma once
// Dense decode attention (one new query token per sequence) over the paged KV cache (bf16 or FP8),
// split-KV ("FlashDecoding"): the grid is (sequence × KV head, split); each block reads its
// slice of K/V once and scores all query heads of the GQA group against it on the tensor cores,
// writes an f32 partial output + log-sum-exp per split, and a second kernel combines the splits.
//
// Layouts (all device pointers):
//   q          [batch][n_heads][head_dim] bf16 (RoPE already applied)
//   kv         the paged cache (paged_kv.h): pools, page table, kv_lens, each in
//              [0, kv.max_kv_len]; a length of 0 gives out = 0 and lse = -inf
//   out        [batch][n_heads][head_dim] bf16
//   lse        [batch][n_heads] f32 or nullptr: natural log of sum_j exp(scale * q.k_j)
// FP8 pools (kv.dtype Fp8E4m3) are read as 1-byte codes, 16 a load, and widened in registers; the
// result is the bf16 kernel's on a bf16 pool holding the dequantized values (code * scale), to
// the bit unless a product leaves f32's normal range (decode_split.cuh says why).
// Query head h reads KV head h / (n_heads / n_kv_heads). head_dim is 64 or 128, the group
// size n_heads / n_kv_heads at most 16.
//
// Nothing here allocates or synchronizes: the caller sizes `workspace` once with
// plan_decode_attention(), and decode_attention() only launches, so it can be graph-captured.
#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "backend/cuda/paged_kv.h"

namespace deltainfer::cuda {

struct DecodeAttentionArgs {
  const __nv_bfloat16* q = nullptr;
  PagedKv kv;  // kv.max_kv_len (host-side bound on kv_lens) picks the split count
  int n_heads = 0;
  float softmax_scale = 0.0f;
  __nv_bfloat16* out = nullptr;
  float* lse = nullptr;  // optional
  void* workspace = nullptr;
  size_t workspace_bytes = 0;
  int num_splits = 0;  // 0: the plan's choice; > 0 forces a split count (benchmarks, tests)
  // Optional (DELTA's Δ-layers): logits[seq][h][t] = softmax_scale * q_h.k_t * log2(e), f32, for
  // t < kv.kv_lens[seq] (other rows untouched); logits_stride >= kv.max_kv_len tokens per sequence.
  float* logits = nullptr;
  int logits_stride = 0;
};

struct DecodeAttentionPlan {
  int num_splits = 1;          // KV splits per (sequence, KV head)
  size_t workspace_bytes = 0;  // partial outputs + log-sum-exps, 256-byte aligned pieces
};

// The split count fills `sm_count` multiprocessors for this batch and context; deterministic in
// its arguments. Throws InputError for unsupported shapes.
// `num_splits` > 0 forces that split count (capped at 256) instead.
DecodeAttentionPlan plan_decode_attention(int batch, int n_heads, int n_kv_heads, int head_dim,
                                          int max_kv_len, int sm_count, int num_splits = 0);

// Launches the split and combine kernels on `stream`. Throws InputError for unsupported shapes or
// a workspace smaller than plan_decode_attention() asks for, Error when a launch fails.
void decode_attention(const DecodeAttentionArgs& args, cudaStream_t stream);

// Multiprocessors of the current device (cached per device; no synchronization).
int current_device_sm_count();

}  // namespace deltainfer::cuda
