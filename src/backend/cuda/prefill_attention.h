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
#include <vector>

#include "core/kv_page.h"

namespace deltainfer::cuda {

// The engine's one page size (core/kv_page.h), as the int the kernels index with.
inline constexpr int kPrefillPageSize = static_cast<int>(kKvPageTokens);

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
// kSm90Ws: the FlashAttention-3 style kernel (consumer ping-pong, softmax overlapped with the
// GEMMs); opt-in, not yet verified on a device; InputError off sm_90.
enum class PrefillKernel { kAuto, kSm80, kSm90, kSm90Ws };

// Launches on `stream`; returns without synchronizing. Throws InputError for unsupported shapes
// and Error when a launch fails.
void prefill_attention(const PrefillAttentionArgs& args, cudaStream_t stream,
                       PrefillKernel kernel = PrefillKernel::kAuto);

// Varlen prefill: the chunks of several sequences in one launch (the batch-first engine's
// prefill step). Chunk c's queries are the contiguous rows [q_row, q_row + n_q) of one packed
// q / out ([rows][n_heads][head_dim]; lse [rows][n_heads]) at positions first_pos, first_pos + 1,
// ..., and attend causally to keys [0, position] of their own sequence: kv_len keys in the
// pages of its page-table row, page_tables + page_row * page_table_stride. window > 0 makes it
// sliding window + sink (as sliding_prefill_attention). Slots past a chunk's kv_len in its last
// page are never read into a result (they may hold NaN). Chunks may come in any order and
// share no rows; a chunk with n_q == 0 is skipped.
//
// Compacted queries (q_pos set, e.g. Δ's strided rows of several chunks): chunk c's rows are at
// positions q_pos[q_row .. q_row + n_q), strictly increasing, the first one first_pos, all below
// kv_len; nullptr gives the contiguous positions above.
//
// Fused Δ correction (delta_dense set; sliding only, window > 0, contiguous queries): as
// sparse_prefill.h's DeltaFusion for each chunk, whose first_pos must be a multiple of gamma and
// whose dense outputs of its rows at positions 0, gamma, 2 gamma, ... of the chunk are rows
// [delta_row, delta_row + ceil(n_q / gamma)) of delta_dense ([rows][n_heads][head_dim]).
struct VarlenChunk {
  int q_row = 0;
  int n_q = 0;
  int first_pos = 0;
  int kv_len = 0;
  int page_row = 0;
  int delta_row = 0;  // with VarlenPrefillArgs::delta_dense only
};

struct VarlenPrefillArgs {
  const __nv_bfloat16* q = nullptr;
  __nv_bfloat16* out = nullptr;
  float* lse = nullptr;  // optional
  int n_heads = 0;
  int n_kv_heads = 0;
  int head_dim = 0;  // 64 or 128
  float softmax_scale = 0.0f;
  const __nv_bfloat16* k_pool = nullptr;
  const __nv_bfloat16* v_pool = nullptr;
  int num_pages = 0;
  const int32_t* page_tables = nullptr;
  int page_table_stride = 0;  // int32 entries per page-table row
  int window = 0;             // 0: dense causal
  int sink = 0;
  const int32_t* q_pos = nullptr;                // [rows] or nullptr: contiguous (see above)
  const __nv_bfloat16* delta_dense = nullptr;  // nullptr: no Δ correction
  int gamma = 0;                                 // 16, 32 or 64 with delta_dense
};

// Chunks per launch on Hopper (their table travels in the kernel's parameters); more are split
// over several launches. Devices without wgmma run one launch per chunk.
inline constexpr int kMaxVarlenChunks = 64;

// Throws InputError for unsupported shapes or chunks outside their sequence, Error when a
// launch fails; returns without synchronizing. Capturable in a CUDA graph.
void varlen_prefill_attention(const VarlenPrefillArgs& args, const std::vector<VarlenChunk>& chunks,
                              cudaStream_t stream);

// One chunk of a varlen batch as a single-sequence call's arguments (its rows of q/out/lse and
// q_pos, its page-table row); Δ fusion is not part of them.
PrefillAttentionArgs varlen_chunk_args(const VarlenPrefillArgs& args, const VarlenChunk& chunk);

}  // namespace deltainfer::cuda
