#pragma once
// The per-page state beside the shared pool of every decode method in use that keeps one
// (methods/cuda_decode_method.h: CudaPageState, e.g. Quest's key bounds): one per method kind,
// made by the method's row when a sequence of that kind first needs it. The transformer calls
// these with a sequence's decode config and never names a method; a method without state makes
// every call a no-op.
#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include "attention/attention_config.h"
#include "backend/cuda/methods/cuda_decode_method.h"
#include "backend/cuda/paged_kv.h"
#include "model/model_config.h"

namespace deltainfer::cuda {

class PageStates {
 public:
  PageStates() = default;
  // k_pools: every layer's K pool (any dtype); table_pages: one sequence's longest page table.
  PageStates(const model::ModelConfig& model, std::vector<PagedKv> k_pools, int table_pages);

  // Makes and sizes the state `decode` needs (Error when the device has no room).
  void ensure(const attention::DecodeConfig& decode);
  // Layer i's state for sequences decoding under `decode`; nullptr where their method keeps none.
  void* layer(const attention::DecodeConfig& decode, int i);

  // Every state forgets the sequence, or what it held past n_tokens.
  void truncate(int64_t sequence, int64_t n_tokens);
  void forget(int64_t sequence);
  // CudaPageState's hooks on the state of `decode`'s method.
  void rebuild_stale(const attention::DecodeConfig& decode, int64_t sequence, const int32_t* pages, int64_t kv_len,
                     cudaStream_t stream);
  void append(const attention::DecodeConfig& decode, int i, const int32_t* page_table, int page_table_stride,
              const int32_t* kv_lens, int max_kv_len, int batch, cudaStream_t stream);
  void appended(const attention::DecodeConfig& decode, int64_t sequence, int64_t kv_len);

 private:
  CudaPageState* state_of(const attention::DecodeConfig& decode);  // nullptr: none made

  model::ModelConfig model_;
  std::vector<PagedKv> k_pools_;
  int table_pages_ = 0;
  std::map<attention::DecodeKind, std::unique_ptr<CudaPageState>> states_;
};

}  // namespace deltainfer::cuda
