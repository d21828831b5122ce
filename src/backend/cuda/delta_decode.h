#pragma once
// Sparse decode policies on the GPU (METHODS.md sections 2 and 3): DELTA's token selection at
// Δ-layers, sparse decode over a selected index set, StreamingLLM's sink + window set, and Quest's
// per-KV-head page selection from key min/max bounds.
//
// Shared layouts (device pointers; q as in decode_attention.h, the paged cache as in paged_kv.h):
//   TokenSet::indices [batch][sets_per_seq][capacity] int32 positions, ascending, -1 past count
//   TokenSet::counts  [batch][sets_per_seq] int32
// sets_per_seq is 1 when one set serves every head (DELTA, StreamingLLM) and n_kv_heads when each
// KV head has its own (Quest).
//
// Nothing here allocates or synchronizes: each plan_*() sizes a workspace once, and the launch
// functions only enqueue kernels on `stream`, so a whole decode step can be graph-captured.
#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "backend/cuda/decode_attention.h"

namespace deltainfer::cuda {

struct TokenSet {
  int32_t* indices = nullptr;
  int32_t* counts = nullptr;
  int capacity = 0;  // entries per set
  int sets_per_seq = 1;
};

enum class HeadReduce { kMax, kSum };  // DELTA's unified score over query heads (max: the paper's)

struct PageSelectConfig {
  int budget = 2048;    // tokens; budget / page pages are kept
  int page = 16;        // tokens per selection page; 1 = token-level selection
  int recency = 128;    // the last ceil(recency / page) pages are always kept (METHODS.md)
  bool keep_sink = true;  // the first page is always kept
  HeadReduce head_reduce = HeadReduce::kMax;
};

// Entries a TokenSet needs per set for this config: whole pages of the budget.
int token_set_capacity(const PageSelectConfig& config);

// ---- DELTA: dense attention + selection at a Δ-layer ----------------------------------------
//
// Set count (per sequence) = tokens of the top budget/page pages: budget when the context holds
// more than budget tokens and ends on a page boundary, minus the unfilled slots of the last page
// otherwise; the whole context when budget >= context.
struct DeltaSelectPlan {
  DecodeAttentionPlan dense;    // the dense pass (its workspace comes first in ours)
  int logits_stride = 0;        // tokens per sequence row of the logits
  int max_pages = 0;            // selection pages per sequence at max_kv_len
  size_t logits_offset = 0;     // [batch][logits_stride][n_heads] f32
  size_t page_scores_offset = 0;  // [batch][max_pages] f32 (tests read them)
  size_t workspace_bytes = 0;
};

DeltaSelectPlan plan_delta_select(int batch, int n_heads, int n_kv_heads, int head_dim, int max_kv_len,
                                  const PageSelectConfig& config, int sm_count);

// Runs the dense decode of `dense` (its lse must be set; its workspace fields are ignored and
// `workspace` is used) and writes the selected set of every sequence into `set`
// (sets_per_seq 1, capacity >= token_set_capacity(config)).
void delta_decode_select(const DecodeAttentionArgs& dense, const PageSelectConfig& config, void* workspace,
                         size_t workspace_bytes, const TokenSet& set, cudaStream_t stream);

// ---- Sparse decode over a token set ---------------------------------------------------------
// How the splits of a KV head are merged: a second (combine) kernel over partials in global
// memory, or inside one thread-block cluster through distributed shared memory (at most 8 splits,
// no second launch). kAuto: the cluster for sets of up to kClusterMergeMaxSet tokens, where a
// split is short and the second launch costs most (measured: bench/delta_decode_bench.cu, sweep).
enum class SplitMerge { kAuto, kCombineKernel, kCluster };
inline constexpr int kClusterMergeMaxSet = 4096;

struct SparseDecodeArgs {
  const __nv_bfloat16* q = nullptr;
  PagedKv kv;    // kv_lens unread (may be null): the sets give the positions
  TokenSet set;  // positions must be < the sequence's kv_len (the producers here guarantee it)
  int n_heads = 0;
  float softmax_scale = 0.0f;
  __nv_bfloat16* out = nullptr;  // [batch][n_heads][head_dim]
  float* lse = nullptr;          // optional, [batch][n_heads]
  void* workspace = nullptr;
  size_t workspace_bytes = 0;
  int num_splits = 0;  // 0: the plan's choice
  SplitMerge merge = SplitMerge::kAuto;
};

struct SparseDecodePlan {
  int num_splits = 1;
  size_t workspace_bytes = 0;
};

SparseDecodePlan plan_sparse_decode(int batch, int n_heads, int n_kv_heads, int head_dim, int capacity,
                                    int sets_per_seq, int sm_count, int num_splits = 0);

// Exact softmax attention of each query head over its set (GQA: one KV read serves the group).
// FP8 pools are read as dense decode reads them (decode_attention.h).
void sparse_decode(const SparseDecodeArgs& args, cudaStream_t stream);

// ---- StreamingLLM ---------------------------------------------------------------------------
// set = [0, sink) ∪ [kv_len - window, kv_len) (the whole context when it is shorter);
// sets_per_seq 1, capacity >= sink + window.
void streaming_select(const int32_t* kv_lens, int batch, int sink, int window, const TokenSet& set,
                      cudaStream_t stream);

// ---- Quest ----------------------------------------------------------------------------------
// Bounds: per physical pool page, KV head and 16-token Quest page, the element-wise min and max of
// the keys (FP8: of code * scale, exact in bf16):
// [num_pool_pages][n_kv_heads][kKvPageSize / 16][2 (min, max)][head_dim] bf16.
inline constexpr int kQuestPage = 16;
size_t quest_bounds_elements(int num_pool_pages, int n_kv_heads, int head_dim);

struct QuestCache {
  PagedKv kv;  // only K is read (v_pool may be null)
  __nv_bfloat16* bounds = nullptr;
};

// After a prefill: the bounds of every Quest page of [0, kv_len).
void quest_build_bounds(const QuestCache& cache, cudaStream_t stream);
// After appending one token per sequence (position kv_len - 1): folds it into its page's bounds
// (the first token of a page resets them). FP8 pools: recomputes the bounds of the pool page holding
// it from the codes (the append may have rescaled the page's earlier keys).
void quest_append_bounds(const QuestCache& cache, cudaStream_t stream);

struct QuestSelectPlan {
  int max_pages = 0;
  size_t page_scores_offset = 0;  // [batch][n_kv_heads][max_pages] f32
  size_t workspace_bytes = 0;
};

QuestSelectPlan plan_quest_select(int batch, int n_heads, int n_kv_heads, int head_dim, int max_kv_len,
                                  const PageSelectConfig& config);

// Page score = max over the group's query heads of sum_d max(q_d min_d, q_d max_d) (an upper bound
// of q.k over the page); the top budget/16 pages per KV head go into `set` (sets_per_seq =
// n_kv_heads). config.page must be 16 and head_reduce is unused.
void quest_select(const __nv_bfloat16* q, int n_heads, const QuestCache& cache, const PageSelectConfig& config,
                  void* workspace, size_t workspace_bytes, const TokenSet& set, cudaStream_t stream);

}  // namespace deltainfer::cuda
