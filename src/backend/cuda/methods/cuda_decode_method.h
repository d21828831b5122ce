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
  int num_pages = 0;                      // physical pages in the pools
  __nv_bfloat16* quest_bounds = nullptr;  // layers of a method that keeps key bounds (quest_decode.h)
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
  // Its Sparse layers read key bounds beside the pool (LayerKv::quest_bounds), which the
  // transformer keeps current (QuestBounds) and the memory plan counts.
  bool keeps_key_bounds = false;
  // Throws InputError for knobs its kernels do not support.
  std::unique_ptr<CudaDecodeMethod> (*create)(const CudaDecodeSetup& setup) = nullptr;
};

const std::vector<CudaDecodeMethodInfo>& cuda_decode_methods();
const CudaDecodeMethodInfo& cuda_decode_method(attention::DecodeKind kind);

// Layers that keep key bounds beside their pools under `decode` (its Sparse layers, where its
// method keeps them; none otherwise).
int key_bound_layer_count(const attention::DecodeConfig& decode, int n_layers);
bool keeps_key_bounds(const attention::DecodeConfig& decode, const attention::LayerSchedule& schedule, int layer);

// Each decode method's row, defined in its own file (backend/cuda/methods/<name>.cpp).
namespace methods {
#define DELTAINFER_DECODE_METHOD(kind, name) CudaDecodeMethodInfo name();
#include "attention/methods/decode_methods.def"
#undef DELTAINFER_DECODE_METHOD
}  // namespace methods

}  // namespace deltainfer::cuda
