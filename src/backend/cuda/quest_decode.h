#pragma once
// Quest decode in the CUDA engine (METHODS.md section 3), kernels in delta_decode.h. Two owners:
//   QuestBounds  (Quest's page state, methods/cuda_decode_method.h, which the transformer owns and
//                calls without naming Quest): the key min/max bounds beside each Quest layer's
//                paged pool, rebuilt outside the decode graph for whatever a prefill or a
//                truncation left stale, and folded in one token per step inside the graph;
//   QuestSelector (Quest's CUDA method, methods/quest.cpp): per-KV-head page selection from those bounds into token sets
//                for sparse_decode (sets_per_seq = n_kv_heads); its buffers are planned up front.
// The selection is the CPU twin's (attention::CpuAttention): pages of 16 tokens, per KV head the
// top budget/16 pages by the bound maximized over the group's query heads, the page being written
// always kept, no sink page. Layers below --full-layers attend densely and keep no bounds.
#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <vector>

#include "attention/attention_config.h"
#include "backend/cuda/delta_decode.h"
#include "backend/cuda/device_buffer.h"
#include "backend/cuda/methods/cuda_decode_method.h"
#include "model/model_config.h"

namespace deltainfer::cuda {

// The key bounds of the shared pool: per layer, per pool page (so every sequence's pages have
// theirs), and per sequence how far they are current.
class QuestBounds final : public CudaPageState {
 public:
  QuestBounds() = default;  // no Quest layers: every call is a no-op
  // k_pools: every layer's K pool of pool_pages pages; table_pages: the longest page table of one
  // sequence (the rebuilds copy it to the device).
  QuestBounds(const model::ModelConfig& model, std::vector<const __nv_bfloat16*> k_pools, int pool_pages,
              int table_pages);
  // Any dtype (FP8: codes and k_scales): each layer's K pool as a PagedKv of k_pool, dtype,
  // k_scales, num_pages (all layers alike), n_kv_heads and head_dim; its table and lengths unused.
  QuestBounds(const model::ModelConfig& model, std::vector<PagedKv> k_pools, int table_pages);

  // Bounds for every layer where `decode`'s method keeps them (keeps_page_state,
  // methods/cuda_decode_method.h; allocated on first need: Error when the device has no room).
  void ensure_layers(const attention::DecodeConfig& decode) override;
  // The layer's bounds, nullptr where it has none.
  __nv_bfloat16* bounds(int i);
  void* layer(int i) override { return bounds(i); }

  // The sequence was cut to n_tokens: the page then holding its last token has bounds of dropped keys.
  void truncate(int64_t sequence, int64_t n_tokens) override;
  // The sequence is gone (its pages may hold another's keys next).
  void forget(int64_t sequence) override;
  // Outside any graph capture: rebuilds the bounds of the sequence's pages (host page table) that
  // hold keys written since they were last current (a prefill, or what a truncation left stale), so
  // they are current for [0, kv_len).
  void rebuild_stale(int64_t sequence, const int32_t* pages, int64_t kv_len, cudaStream_t stream) override;
  // Inside the decode graph, after layer i's keys at positions kv_lens[s] - 1 of `batch` sequences
  // are in the pool: folds them in (row s of page_table, page_table_stride entries).
  void append(int i, const int32_t* page_table, int page_table_stride, const int32_t* kv_lens, int max_kv_len,
              int batch, cudaStream_t stream) override;
  // Host bookkeeping after a decode step that appended in every Quest layer.
  void appended(int64_t sequence, int64_t kv_len) override { current_[sequence] = kv_len; }

 private:
  model::ModelConfig model_;
  std::vector<PagedKv> k_pools_;  // per layer: its K pool, dtype and scales (no table, no lengths)
  std::vector<DeviceBuffer<__nv_bfloat16>> bounds_;  // per layer; empty where no method runs Quest
  int pool_pages_ = 0;
  std::map<int64_t, int64_t> current_;  // per sequence: its bounds are exact for the keys [0, current)
  DeviceBuffer<int32_t> table_;         // the page table of the sequence being rebuilt
  DeviceBuffer<int32_t> rebuild_len_;
};

class QuestSelector {
 public:
  // Throws InputError unless decode.page is 16, the bounds' granularity. Sets for up to max_batch
  // sequences of up to `capacity` positions.
  QuestSelector(const attention::DecodeConfig& decode, const model::ModelConfig& model, int64_t capacity,
                int max_batch = 1);

  int set_capacity() const { return set_capacity_; }  // entries per KV head's set
  size_t device_bytes() const;  // what the constructor allocated

  // Selects each KV head's pages for each sequence's q ([batch][n_heads][head_dim]); cache.bounds
  // must be current for [0, kv_len). The returned sets (ours) stay valid until the next call.
  TokenSet select(const __nv_bfloat16* q, const QuestCache& cache, cudaStream_t stream);

 private:
  PageSelectConfig select_;
  int n_heads_;
  int set_capacity_;
  DeviceBuffer<int32_t> set_indices_, set_counts_;
  DeviceBuffer<unsigned char> select_ws_;
};

}  // namespace deltainfer::cuda
