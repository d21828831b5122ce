#pragma once
// Dense causal prefill attention on the GPU: bf16 queries against a paged bf16 KV cache, GQA,
// head dim 64 or 128, f32 online softmax, bf16 output and optionally the per-row log-sum-exp.
//
// Layouts (all device pointers):
//   q          [n_q][n_heads][head_dim] bf16, one row per query token
//   kv         the sequence's cache (paged_kv.h), bf16 (an FP8 cache is staged to bf16 first,
//              kv_fp8_stage.h; an FP8 descriptor is refused): batch 1, page_table its row of
//              at least ceil(kv_len / kKvPageSize) pages, num_pages >= 1 (it bounds the Hopper
//              kernel's TMA loads). kv_len = kv.max_kv_len is the sequence's key count, exactly:
//              the prefill kernels take it from the host and read no kv_lens. head_dim is
//              kv.head_dim, n_kv_heads kv.n_kv_heads.
//   q_pos      [n_q] int32, strictly increasing, each < kv_len; or nullptr for contiguous
//              queries at first_pos, first_pos + 1, ... (chunked prefill)
//   out        [n_q][n_heads][head_dim] bf16
//   lse        [n_q][n_heads] f32 or nullptr: natural log of sum_j exp(scale * q.k_j)
// Query i attends keys j <= position(i). Query head h reads KV head h / (n_heads / n_kv_heads).
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "backend/cuda/paged_kv.h"

namespace deltainfer::cuda {

struct PrefillAttentionArgs {
  const __nv_bfloat16* q = nullptr;
  const int32_t* q_pos = nullptr;  // nullptr: contiguous positions from first_pos
  int first_pos = 0;
  int n_q = 0;
  int n_heads = 0;
  float softmax_scale = 0.0f;
  PagedKv kv;  // batch 1, bf16; kv.max_kv_len keys, kv.head_dim 64 or 128 (see above)
  __nv_bfloat16* out = nullptr;
  float* lse = nullptr;  // optional
};

// One sequence's bf16 cache as PrefillAttentionArgs::kv: pools of num_pages pages, page_table its
// ceil(kv_len / kKvPageSize) logical -> pool pages, kv_len keys. Host-side; checks nothing.
PagedKv bf16_sequence_kv(const __nv_bfloat16* k_pool, const __nv_bfloat16* v_pool, int num_pages, int n_kv_heads,
                         int head_dim, const int32_t* page_table, int kv_len);

// Which kernel runs. kAuto is auto_prefill_kernel(): the fastest verified one for the device
// (Hopper: kSm90Ws, the FlashAttention-3 style kernel: consumer ping-pong, softmax overlapped with
// the GEMMs; the default since 2026-12-02, when the engine's model tests passed on it). kSm90: the
// v3 kernel, kept as the fallback and as a reference in the tests. kSm90/kSm90Ws: InputError off
// sm_90.
enum class PrefillKernel { kAuto, kSm80, kSm90, kSm90Ws };

// The kernel a user names: "auto", "sm80", "sm90" or "sm90ws"; nullopt for anything else.
std::optional<PrefillKernel> prefill_kernel_named(std::string_view name);

// What kAuto means in this process, for every prefill entry point (dense, sparse, varlen, and so
// for the engine): the environment variable DELTAINFER_PREFILL_KERNEL (sm80, sm90 or sm90ws) when
// set and not empty or "auto", read once; else kSm90Ws on a device with wgmma, kSm80 elsewhere.
// Throws InputError naming the variable for any other value. A knob for benchmarks and for trying
// a kernel in the whole engine without a rebuild.
PrefillKernel auto_prefill_kernel();

// The kernel that runs for `kernel`: itself, or auto_prefill_kernel() for kAuto. Every entry point
// resolves through here (after refusing what it cannot run when asked for explicitly).
PrefillKernel resolved_prefill_kernel(PrefillKernel kernel);

// Launches on `stream`; returns without synchronizing. Throws InputError for unsupported shapes
// and Error when a launch fails.
void prefill_attention(const PrefillAttentionArgs& args, cudaStream_t stream,
                       PrefillKernel kernel = PrefillKernel::kAuto);

// Varlen prefill: the chunks of several sequences in one launch (the batch-first engine's
// prefill step). Chunk c's queries are the contiguous rows [q_row, q_row + n_q) of one packed
// q / out ([rows][n_heads][head_dim]; lse [rows][n_heads]) at positions first_pos, first_pos + 1,
// ..., and attend causally to keys [0, position] of their own sequence: kv_len keys in the
// pages of its row of the cache's page table, kv.page_table + page_row * kv.page_table_stride.
// kv is as PrefillAttentionArgs::kv (bf16, num_pages >= 1, kv_lens unread) but for the whole
// batch: kv.batch rows of page_table (page_row < kv.batch), kv.max_kv_len a bound on every
// chunk's kv_len. window > 0 makes it sliding window + sink (as sliding_prefill_attention). Slots
// past a chunk's kv_len in its last page are never read into a result (they may hold NaN).
// Chunks may come in any order and share no rows; a chunk with n_q == 0 is skipped.
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
  float softmax_scale = 0.0f;
  PagedKv kv;      // bf16, every sequence's page-table row (see above); kv.head_dim 64 or 128
  int window = 0;  // 0: dense causal
  int sink = 0;
  const int32_t* q_pos = nullptr;              // [rows] or nullptr: contiguous (see above)
  const __nv_bfloat16* delta_dense = nullptr;  // nullptr: no Δ correction
  int gamma = 0;                               // 16, 32 or 64 with delta_dense
};

// Chunks per launch on Hopper (their table travels in the kernel's parameters); more are split
// over several launches. Devices without wgmma run one launch per chunk.
inline constexpr int kMaxVarlenChunks = 64;

// Throws InputError for unsupported shapes or chunks outside their sequence, Error when a
// launch fails; returns without synchronizing. Capturable in a CUDA graph.
// kernel: kAuto (on Hopper the FA3-style kernel when auto_prefill_kernel() is kSm90Ws, else v3;
// off Hopper one sm80 launch per chunk), kSm90 (v3), kSm90Ws (the FlashAttention-3 style kernel;
// InputError off sm_90); kSm80 has no varlen launch (InputError).
void varlen_prefill_attention(const VarlenPrefillArgs& args, const std::vector<VarlenChunk>& chunks,
                              cudaStream_t stream, PrefillKernel kernel = PrefillKernel::kAuto);

// A bf16 cache of `batch` sequences as VarlenPrefillArgs::kv: pools of num_pages pages, row s of
// page_table (page_table_stride entries) sequence s's pages, max_kv_len what a row holds.
// Host-side; checks nothing.
PagedKv bf16_batch_kv(const __nv_bfloat16* k_pool, const __nv_bfloat16* v_pool, int num_pages, int n_kv_heads,
                      int head_dim, const int32_t* page_table, int page_table_stride, int batch);

// One chunk of a varlen batch as a single-sequence call's arguments (its rows of q/out/lse and
// q_pos, its sequence of the cache: sequence_kv(kv, page_row, kv_len)); Δ fusion is not part of
// them.
PrefillAttentionArgs varlen_chunk_args(const VarlenPrefillArgs& args, const VarlenChunk& chunk);

}  // namespace deltainfer::cuda
