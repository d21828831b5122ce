#pragma once
// The CUDA side of a decode method (the attention layer's registry, attention/method_registry.h,
// knows no CUDA): each line of attention/methods/decode_methods.def has a row here, defined in the
// method's own file backend/cuda/methods/<name>.cpp. CudaAttention attends Full layers densely
// itself and hands every other layer's batched call to the method's CudaDecodeMethod.
#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "attention/attention_config.h"
#include "attention/layer_schedule.h"
#include "backend/cuda/paged_kv.h"
#include "core/kv_page.h"
#include "model/model_config.h"

namespace deltainfer::cuda {

// One layer's paged pools and the page tables of the sequences a call serves: row s of
// page_table (page_table_stride entries) maps sequence s's logical pages to pool pages.
struct LayerKv {
  const void* k_pool = nullptr;  // values of `dtype` (paged_kv.h)
  const void* v_pool = nullptr;
  KvDtype dtype = KvDtype::Bf16;
  const float* k_scales = nullptr;  // FP8 only
  const float* v_scales = nullptr;
  const int32_t* page_table = nullptr;
  int page_table_stride = 0;
  int num_pages = 0;          // physical pages in the pools
  void* page_state = nullptr;  // this layer's part of the method's CudaPageState (below); nullptr: none
};

// A bf16 layer's pools seen through one page-table row (decode tests).
inline LayerKv bf16_layer_kv(const __nv_bfloat16* k_pool, const __nv_bfloat16* v_pool, const int32_t* page_table,
                             int page_table_stride, int num_pages) {
  LayerKv kv;
  kv.k_pool = k_pool;
  kv.v_pool = v_pool;
  kv.page_table = page_table;
  kv.page_table_stride = page_table_stride;
  kv.num_pages = num_pages;
  return kv;
}

// State a decode method keeps per pool page beside the pools of its Sparse layers (Quest: each
// page's key bounds). The method's row declares its size and makes it; the transformer owns one
// per method kind in use, counts it in the memory plan and calls these hooks, not knowing what it
// holds. Sequences are the runtime's ids.
class CudaPageState {
 public:
  virtual ~CudaPageState() = default;
  // Allocates the state of every layer where `decode` keeps one (Error when the device has no room).
  virtual void ensure_layers(const attention::DecodeConfig& decode) = 0;
  // Layer i's state, nullptr where it has none (what LayerKv::page_state carries).
  virtual void* layer(int i) = 0;
  // The sequence was cut to n_tokens / is gone (its pages may hold another's keys next).
  virtual void truncate(int64_t sequence, int64_t n_tokens) = 0;
  virtual void forget(int64_t sequence) = 0;
  // Before a step, outside any graph capture: brings the state of the sequence's pages (host page
  // table) up to date for [0, kv_len) (after a prefill chunk, or what a truncation left stale).
  virtual void rebuild_stale(int64_t sequence, const int32_t* pages, int64_t kv_len, cudaStream_t stream) = 0;
  // Inside the decode graph, after layer i's keys at positions kv_lens[s] - 1 of `batch` sequences
  // are in the pool; appended() is the host's bookkeeping after such a step.
  virtual void append(int i, const int32_t* page_table, int page_table_stride, const int32_t* kv_lens, int max_kv_len,
                      int batch, cudaStream_t stream) = 0;
  virtual void appended(int64_t sequence, int64_t kv_len) = 0;
};

// What a page state is made over: every layer's K pool of pool_pages pages, and the longest page
// table of one sequence.
struct CudaPageStateSetup {
  const model::ModelConfig& model;
  std::vector<PagedKv> k_pools;  // every layer's K pool, any dtype (its table and lengths unused)
  int table_pages = 0;           // the longest page table of one sequence
};

// What a method's workspaces are planned for: batches of up to max_batch sequences of up to
// `capacity` positions.
struct CudaDecodeSetup {
  const attention::AttentionConfig& config;
  const model::ModelConfig& model;
  int64_t capacity = 0;
  int max_batch = 1;
  int sms = 0;                 // streaming multiprocessors (the split-KV plans depend on them)
  float softmax_scale = 0.0f;
};

// One batched decode call of a layer: `batch` sequences, q and out [batch][n_heads][head_dim],
// kv_lens [batch] on the device (each = position + 1, bounded by max_kv_len, the graph's bucket).
struct CudaDecodeCall {
  int layer = 0;
  attention::LayerRole role = attention::LayerRole::Full;
  const __nv_bfloat16* q = nullptr;
  const int32_t* kv_lens = nullptr;
  int max_kv_len = 0;
  int batch = 0;
  const LayerKv& kv;
  __nv_bfloat16* out = nullptr;
};

// A decode method's CUDA implementation for one AttentionConfig: its workspaces (allocated by its
// factory, counted by device_bytes) and its DeltaSelect / Sparse layers. Calls only launch on the
// stream (they are captured in decode graphs).
class CudaDecodeMethod {
 public:
  virtual ~CudaDecodeMethod() = default;
  virtual size_t device_bytes() const = 0;
  // A layer whose role is not Full; layers come in order 0..L-1 each step.
  virtual void decode(const CudaDecodeCall& call, cudaStream_t stream) = 0;
};

struct CudaDecodeMethodInfo {
  attention::DecodeKind kind = attention::DecodeKind::Dense;  // filled in by the registry
  // Per-page state beside the pools of its Sparse layers (LayerKv::page_state): bytes per pool
  // page and layer, and its factory; both nullptr for a method that keeps none.
  size_t (*page_state_bytes)(const model::ModelConfig& model) = nullptr;
  std::unique_ptr<CudaPageState> (*create_page_state)(const CudaPageStateSetup& setup) = nullptr;
  // Throws InputError for knobs its kernels do not support.
  std::unique_ptr<CudaDecodeMethod> (*create)(const CudaDecodeSetup& setup) = nullptr;
};

const std::vector<CudaDecodeMethodInfo>& cuda_decode_methods();
const CudaDecodeMethodInfo& cuda_decode_method(attention::DecodeKind kind);

// Whether `layer` keeps page state under `decode` (a Sparse layer of a method that keeps some),
// and the bytes of it per pool page over all layers (what the memory plan counts).
bool keeps_page_state(const attention::DecodeConfig& decode, const attention::LayerSchedule& schedule, int layer);
size_t page_state_bytes_per_page(const attention::DecodeConfig& decode, const model::ModelConfig& model);

// Each decode method's row, defined in its own file (backend/cuda/methods/<name>.cpp).
namespace methods {
#define DELTAINFER_DECODE_METHOD(kind, name) CudaDecodeMethodInfo name();
#include "attention/methods/decode_methods.def"
#undef DELTAINFER_DECODE_METHOD
}  // namespace methods

}  // namespace deltainfer::cuda
