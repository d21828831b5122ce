#pragma once
// Device memory planned up front: bf16 weights, the paged KV cache (bf16, or FP8 codes plus a
// scale per page and KV head: core/kv_fp8_page.h) for `max_batch`
// sequences of `max_context` tokens (with the decode method's per-page state beside the pools:
// methods/cuda_decode_method.h, CudaPageState), and
// the activation workspaces of one prefill chunk, sized from the model config before they are
// allocated; plus the attention policy's workspaces (the caller allocates those first and passes
// their size, with the free memory measured before). A request that does not fit in the free
// device memory is refused with an InputError that names every size.
#include <cstddef>
#include <cstdint>

#include "core/kv_page.h"
#include "model/model_config.h"

namespace deltainfer::cuda {

struct MemoryRequest {
  int64_t max_context = 0;  // tokens per sequence (prompt + generation)
  int max_batch = 1;        // sequences decoded together
  int64_t kv_pages = 0;     // pages of the shared KV pool; 0: max_batch sequences of max_context
  int prefill_chunk = 2048;  // tokens per prefill step
  KvDtype kv_dtype = KvDtype::Bf16;
  // Tensor parallel (world > 1): each rank also holds its vocabulary part's logits
  // ([logit rows][rank_vocab_columns]) and every rank's gathered ([world][rows][columns]).
  int world = 1;
  int64_t rank_vocab_columns = 0;
  size_t page_state_bytes_per_page = 0;  // the decode method's state per pool page, all layers (page_state_bytes_per_page)
  size_t attention_bytes = 0;  // the attention policy's workspaces (CudaAttention::device_bytes; --fidelity's dense scratch too)
  size_t reserve_bytes = size_t{512} << 20;  // left free for the CUDA context, cuBLASLt, fragmentation
};

struct MemoryPlan {
  size_t weight_bytes = 0;
  size_t kv_bytes = 0;         // K and V pools of all layers (with FP8: their scales too)
  size_t page_state_bytes = 0;  // the decode method's per-page state, every pool page
  size_t workspace_bytes = 0;  // activations, logits and GEMM workspaces
  // FP8 cache only: the bf16 staging pool of one sequence's pages that prefill reads
  // (kv_fp8_stage.h), its identity page table, and the rotated K/V rows fp8_append_kv quantizes.
  size_t kv_staging_bytes = 0;
  size_t attention_bytes = 0;  // the attention policy's workspaces, as requested
  size_t total_bytes = 0;
  int64_t pages_per_sequence = 0;
  int64_t num_pages = 0;           // physical pages per layer pool
  size_t kv_bytes_per_page = 0;    // all layers, K and V (with FP8: their scales too)
  size_t kv_bytes_per_token = 0;   // kv_bytes_per_page / kKvPageTokens, rounded up
  size_t page_state_bytes_per_token = 0;  // page_state_bytes_per_page / kKvPageTokens
};

// Rows of the logits buffer: every decode row of a step (max_batch), and prompt rows (AllTokens,
// TokenNlls) projected in blocks of up to kLogitBlockRows of the step's rows. The transformer
// allocates it by this and the plan counts it by this.
inline constexpr int64_t kLogitBlockRows = 256;
inline int64_t logit_buffer_rows(int64_t step_rows, int max_batch) {
  const int64_t block = step_rows < kLogitBlockRows ? step_rows : kLogitBlockRows;
  return block > max_batch ? block : int64_t{max_batch};
}

// Pure arithmetic: testable without a GPU. Throws InputError when the request is malformed or
// when total + reserve exceeds free_device_bytes.
MemoryPlan plan_memory(const model::ModelConfig& config, const MemoryRequest& request, size_t free_device_bytes);

// cudaMemGetInfo's free bytes on the current device.
size_t free_device_bytes();

}  // namespace deltainfer::cuda
