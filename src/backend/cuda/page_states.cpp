#include "backend/cuda/page_states.h"

#include <utility>

namespace deltainfer::cuda {

PageStates::PageStates(const model::ModelConfig& model, std::vector<PagedKv> k_pools, int table_pages)
    : model_(model), k_pools_(std::move(k_pools)), table_pages_(table_pages) {}

void PageStates::ensure(const attention::DecodeConfig& decode) {
  const CudaDecodeMethodInfo& method = cuda_decode_method(decode.kind);
  if (method.create_page_state == nullptr) return;
  std::unique_ptr<CudaPageState>& state = states_[decode.kind];
  if (state == nullptr) state = method.create_page_state(CudaPageStateSetup{model_, k_pools_, table_pages_});
  state->ensure_layers(decode);
}

CudaPageState* PageStates::state_of(const attention::DecodeConfig& decode) {
  const auto found = states_.find(decode.kind);
  return found == states_.end() ? nullptr : found->second.get();
}

void* PageStates::layer(const attention::DecodeConfig& decode, int i) {
  CudaPageState* state = state_of(decode);
  return state != nullptr ? state->layer(i) : nullptr;
}

void PageStates::truncate(int64_t sequence, int64_t n_tokens) {
  for (auto& entry : states_) entry.second->truncate(sequence, n_tokens);
}

void PageStates::forget(int64_t sequence) {
  for (auto& entry : states_) entry.second->forget(sequence);
}

void PageStates::rebuild_stale(const attention::DecodeConfig& decode, int64_t sequence, const int32_t* pages,
                               int64_t kv_len, cudaStream_t stream) {
  if (CudaPageState* state = state_of(decode)) state->rebuild_stale(sequence, pages, kv_len, stream);
}

void PageStates::append(const attention::DecodeConfig& decode, int i, const int32_t* page_table,
                        int page_table_stride, const int32_t* kv_lens, int max_kv_len, int batch,
                        cudaStream_t stream) {
  if (CudaPageState* state = state_of(decode)) {
    state->append(i, page_table, page_table_stride, kv_lens, max_kv_len, batch, stream);
  }
}

void PageStates::appended(const attention::DecodeConfig& decode, int64_t sequence, int64_t kv_len) {
  if (CudaPageState* state = state_of(decode)) state->appended(sequence, kv_len);
}

}  // namespace deltainfer::cuda
