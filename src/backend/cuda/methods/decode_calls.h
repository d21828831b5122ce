#pragma once
// The kernel calls the decode methods share: dense split-KV decode and sparse decode over token
// sets, with their arguments from a CudaDecodeCall, and the workspace sizing for every batch size
// and context bucket a decode graph may see.
#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "backend/cuda/decode_attention.h"
#include "backend/cuda/delta_decode.h"
#include "backend/cuda/methods/cuda_decode_method.h"
#include "model/model_config.h"

namespace deltainfer::cuda {

// Each decode workspace must hold what its plan asks for at every batch size up to max_batch and
// every context bucket up to the capacity (the split count, and so the partials, depend on both).
template <typename BytesFor>
size_t largest_plan(int max_batch, int64_t capacity, BytesFor&& bytes_for) {
  size_t largest = 0;
  for (int batch = 1; batch <= max_batch; ++batch) {
    for (int64_t bucket = 256;; bucket *= 2) {
      const int len = static_cast<int>(std::min<int64_t>(bucket, capacity));
      largest = std::max(largest, bytes_for(batch, len));
      if (len == capacity) break;
    }
  }
  return largest;
}

// The call's paged cache: its layer's pools, its sequences' page-table rows and lengths.
PagedKv paged_kv_of(const model::ModelConfig& model, const CudaDecodeCall& call);

// Dense decode of the call over every key (no workspace, no lse set).
DecodeAttentionArgs dense_decode_args(const model::ModelConfig& model, float softmax_scale,
                                      const CudaDecodeCall& call);

// Sparse decode of the call over `set` (one set per sequence, or one per KV head).
void sparse_decode_over_set(const model::ModelConfig& model, float softmax_scale, const CudaDecodeCall& call,
                            const TokenSet& set, void* workspace, size_t workspace_bytes, cudaStream_t stream);

}  // namespace deltainfer::cuda
