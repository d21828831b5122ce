#pragma once
// Dense causal prefill attention on the GPU: bf16 queries against a paged bf16 KV cache, GQA,
// head dim 64 or 128, f32 online softmax, bf16 output and optionally the per-row log-sum-exp.
//
// Layouts (all device pointers):
//   q          [n_q][n_heads][head_dim] bf16, one row per query token
//   k_pool,
//   v_pool     [num_pages][n_kv_heads][kPrefillPageSize][head_dim] bf16
//   page_table [ceil(kv_len / kPrefillPageSize)] int32: logical page -> physical page
//   q_pos      [n_q] int32, strictly increasing, each < kv_len; or nullptr for contiguous
//              queries at first_pos, first_pos + 1, ... (chunked prefill)
//   out        [n_q][n_heads][head_dim] bf16
//   lse        [n_q][n_heads] f32 or nullptr: natural log of sum_j exp(scale * q.k_j)
// Query i attends keys j <= position(i). Query head h reads KV head h / (n_heads / n_kv_heads).
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace deltainfer::cuda {

inline constexpr int kPrefillPageSize = 64;

struct PagedKvView {
  const __nv_bfloat16* k_pool = nullptr;
  const __nv_bfloat16* v_pool = nullptr;
  const int32_t* page_table = nullptr;
  int num_pages = 0;  // physical pages in the pools (bounds the TMA descriptors)
  int kv_len = 0;     // keys of this sequence held in the cache
};

struct PrefillAttentionArgs {
  const __nv_bfloat16* q = nullptr;
  const int32_t* q_pos = nullptr;  // nullptr: contiguous positions from first_pos
  int first_pos = 0;
  int n_q = 0;
  int n_heads = 0;
  int n_kv_heads = 0;
  int head_dim = 0;  // 64 or 128
  float softmax_scale = 0.0f;
  PagedKvView kv;
  __nv_bfloat16* out = nullptr;
  float* lse = nullptr;  // optional
};

// Which kernel runs. kAuto picks the fastest available one for the device (Hopper: kSm90).
enum class PrefillKernel { kAuto, kSm80, kSm90 };

// Launches on `stream`; returns without synchronizing. Throws InputError for unsupported shapes
// and Error when a launch fails.
void prefill_attention(const PrefillAttentionArgs& args, cudaStream_t stream,
                       PrefillKernel kernel = PrefillKernel::kAuto);

}  // namespace deltainfer::cuda
