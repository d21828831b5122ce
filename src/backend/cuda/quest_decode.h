#pragma once
// Quest decode in the CUDA engine (METHODS.md section 3), kernels in delta_decode.h. Two owners:
//   QuestBounds  (the transformer's): the key min/max bounds beside each Quest layer's paged pool,
//                rebuilt outside the decode graph for whatever a prefill or a truncation left
//                stale, and folded in one token per step inside the graph;
//   QuestSelector (CudaAttention's): per-KV-head page selection from those bounds into token sets
//                for sparse_decode (sets_per_seq = n_kv_heads); its buffers are planned up front.
// The selection is the CPU twin's (attention::CpuAttention): pages of 16 tokens, per KV head the
// top budget/16 pages by the bound maximized over the group's query heads, the page being written
// always kept, no sink page. Layers below --full-layers attend densely and keep no bounds.
#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "attention/attention_config.h"
#include "backend/cuda/delta_decode.h"
#include "backend/cuda/device_buffer.h"
#include "model/model_config.h"

namespace deltainfer::cuda {

// Layers that decode with Quest under `decode` (none unless it is Quest).
int quest_layer_count(const attention::DecodeConfig& decode, int n_layers);

// One sequence's view of a layer's pool and bounds; kv_len (device) bounded by max_kv_len.
QuestCache quest_cache_of(const model::ModelConfig& model, const __nv_bfloat16* k_pool, __nv_bfloat16* bounds,
                          const int32_t* page_table, int num_pages, const int32_t* kv_len, int max_kv_len);

class QuestBounds {
 public:
  QuestBounds() = default;  // no Quest layers: every call is a no-op
  // k_pools: every layer's K pool of num_pages pages, all behind `page_table` (one sequence).
  QuestBounds(const attention::DecodeConfig& decode, const model::ModelConfig& model,
              std::vector<const __nv_bfloat16*> k_pools, const int32_t* page_table, int num_pages);

  // The layer's bounds, nullptr where it has none.
  __nv_bfloat16* layer(int i);

  // The cache was cut to n_tokens: the page then holding its last token has bounds of dropped keys.
  void truncate(int64_t n_tokens);
  // Outside any graph capture: rebuilds the bounds of every page with keys written since they were
  // last current (a prefill, or what a truncation left stale), so they are current for [0, kv_len).
  void rebuild_stale(int64_t kv_len, cudaStream_t stream);
  // Inside the decode graph, after layer i's key at position kv_len - 1 is in the pool: folds it in.
  void append(int i, const int32_t* kv_len, int max_kv_len, cudaStream_t stream);
  // Host bookkeeping after a decode step that appended in every Quest layer.
  void appended(int64_t kv_len) { current_ = kv_len; }

 private:
  model::ModelConfig model_;
  std::vector<const __nv_bfloat16*> k_pools_;
  std::vector<DeviceBuffer<__nv_bfloat16>> bounds_;  // per layer; empty below --full-layers
  const int32_t* page_table_ = nullptr;
  int num_pages_ = 0;
  int64_t current_ = 0;  // the bounds are exact for the keys [0, current_)
  DeviceBuffer<int32_t> rebuild_len_;
};

class QuestSelector {
 public:
  // Throws InputError unless decode.page is 16, the bounds' granularity.
  QuestSelector(const attention::DecodeConfig& decode, const model::ModelConfig& model, int64_t capacity);

  int set_capacity() const { return set_capacity_; }  // entries per KV head's set
  size_t device_bytes() const;  // what the constructor allocated

  // Selects each KV head's pages for one token's q ([n_heads][head_dim]); cache.bounds must be
  // current for [0, kv_len). The returned sets (ours) stay valid until the next call.
  TokenSet select(const __nv_bfloat16* q, const QuestCache& cache, cudaStream_t stream);

 private:
  PageSelectConfig select_;
  int n_heads_;
  int set_capacity_;
  DeviceBuffer<int32_t> set_indices_, set_counts_;
  DeviceBuffer<unsigned char> select_ws_;
};

}  // namespace deltainfer::cuda
