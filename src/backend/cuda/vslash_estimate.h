#pragma once
// Vertical-slash (MInference-style) estimation on the GPU: the twin of attention/vertical_slash.h
// (vertical_slash_scores, select_vertical_slash, vertical_slash_ranges). For one prefill chunk
// (rows first_pos .. end - 1, end = first_pos + n_q, keys 0 .. end - 1 in the paged cache) it
// builds the block lists that block_sparse_prefill_attention takes:
//   1. LSE of the last E = min(estimate_queries, n_q) rows: prefill_attention with lse output.
//   2. For each query head, p_tj = exp(scale q_t.k_j - lse_t) for j <= row t, summed per key
//      column j (vertical) and per offset o = row_t - j (slash), in f32 and in a fixed order
//      (deterministic; the CPU twin sums in f64: scores agree to f32 rounding).
//   3. The top `vertical` columns and top `slash` offsets per head (page_topk with pages of one
//      token: ties to the smaller index, ascending output), as the CPU's top_k_indices.
//   4. Per (head, query block of kSparseQueryBlock = 128 rows counted from the chunk's first row,
//      the last one shorter): the 64-key blocks b <= (i1 - 1) / 64 of the query block [i0, i1)
//      with b == 0, b >= i0 / 64 - 1 (its rows' own blocks and the one before), a kept column in
//      b, or a kept offset o with i0 - 64 b - 63 <= o <= i1 - 1 - 64 b (the diagonal o crosses b
//      within the block's rows).
// The CPU twin cuts its vslash chunks into the same query blocks (attention::
// kVerticalSlashQueryBlock) with key blocks of --block, so given the same kept columns and
// offsets both attend to the same sets; the GPU needs --block 64 (kSparseKeyBlock).
//
// Everything is planned at construction for chunks of up to max_chunk rows in a cache of up to
// `capacity` positions; build_lists only enqueues kernels on the stream (no sync, no allocation).
#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

#include "backend/cuda/delta_decode.h"
#include "backend/cuda/device_buffer.h"
#include "backend/cuda/prefill_attention.h"
#include "backend/cuda/sparse_prefill.h"

namespace deltainfer::cuda {

struct VslashParams {
  int estimate_queries = 64;
  int vertical = 1000;  // key columns kept per head
  int slash = 6096;     // diagonal offsets kept per head
};

class VslashEstimator {
 public:
  // Throws InputError for sizes that do not fit (int32 list offsets) or non-positive sizes.
  VslashEstimator(int n_heads, int head_dim, int64_t max_chunk, int64_t capacity, const VslashParams& params);

  // `chunk`: the chunk as the sparse kernel will see it (contiguous q, q_pos == nullptr, n_q rows
  // at first_pos, kv.max_kv_len == first_pos + n_q). The lists stay valid until the next call.
  BlockSparseLists build_lists(const PrefillAttentionArgs& chunk, cudaStream_t stream);

  size_t device_bytes() const;  // what the constructor allocated

  // The last build's intermediate results, for tests (device pointers).
  int score_stride() const { return score_stride_; }
  const float* vertical_scores() const { return vertical_.data(); }  // [n_heads][score_stride]
  const float* slash_scores() const { return slash_.data(); }        // [n_heads][score_stride]
  TokenSet kept_columns() { return kept(columns_, column_counts_); }  // one set per head
  TokenSet kept_offsets() { return kept(offsets_, offset_counts_); }
  const int32_t* list_offsets() const { return list_offsets_.data(); }  // [n_heads * n_qblocks + 1]
  const int32_t* list_indices() const { return list_indices_.data(); }

 private:
  TokenSet kept(DeviceBuffer<int32_t>& indices, DeviceBuffer<int32_t>& counts) const;
  void select_top(const float* scores, int k, DeviceBuffer<int32_t>& indices, DeviceBuffer<int32_t>& counts,
                  cudaStream_t stream);

  int n_heads_;
  int head_dim_;
  VslashParams params_;
  int64_t max_chunk_;
  int64_t capacity_;
  int score_stride_;
  int max_estimate_rows_;
  int64_t list_capacity_;
  DeviceBuffer<__nv_bfloat16> estimate_out_;
  DeviceBuffer<float> lse_, vertical_, slash_, diagonal_partials_;
  DeviceBuffer<int32_t> kv_len_, columns_, column_counts_, offsets_, offset_counts_;
  DeviceBuffer<unsigned char> column_block_flags_;
  DeviceBuffer<int32_t> offsets_below_;  // [n_heads][score_stride + 1]: kept offsets < o
  DeviceBuffer<int32_t> list_counts_, list_offsets_, list_indices_;
};

// Entries the block lists of a chunk of n_q rows at first_pos can need at most: per query block,
// its causal key blocks, and never more than the 5 local and sink blocks + vertical + 3 per offset.
int64_t vslash_list_bound(int64_t first_pos, int64_t n_q, int n_heads, const VslashParams& params);

}  // namespace deltainfer::cuda
