#pragma once
// The CUDA side of a prefill method: each line of attention/methods/prefill_methods.def has a row
// here, defined in the method's own file backend/cuda/methods/<name>_prefill.cpp. CudaAttention
// runs Δ correction and the dense tail around any method; the method attends the chunk's rows.
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "attention/attention_config.h"
#include "backend/cuda/prefill_attention.h"
#include "backend/cuda/sparse_prefill.h"
#include "model/model_config.h"

namespace deltainfer::cuda {

// What a method's workspaces are planned for: chunks of up to max_chunk rows in a cache of up to
// `capacity` positions.
struct CudaPrefillSetup {
  const attention::AttentionConfig& config;
  const model::ModelConfig& model;
  int64_t capacity = 0;
  int64_t max_chunk = 0;
};

// A prefill method's CUDA implementation for one AttentionConfig. Calls only launch on the stream.
class CudaPrefillMethod {
 public:
  virtual ~CudaPrefillMethod() = default;
  virtual size_t device_bytes() const { return 0; }
  // Once per chunk, before anything of it runs (`chunk`: contiguous q, q_pos == nullptr): what
  // attend() needs from the chunk (vertical-slash: its block lists).
  virtual void prepare(const PrefillAttentionArgs& chunk, cudaStream_t stream) {
    (void)chunk;
    (void)stream;
  }
  // Attends the chunk's rows under the method; with fused.dense_rows set, Δ's correction is
  // applied in the same pass (only methods that keep fewer than every key are asked to).
  virtual void attend(const PrefillAttentionArgs& chunk, cudaStream_t stream, const DeltaFusion& fused) = 0;
  // The chunks of several sequences of one step (varlen, prefill_attention.h: packed q/out, one
  // page-table row each); with batch.delta_dense set, Δ's correction as in attend(), chunk c's
  // dense rows from batch.delta_dense's row c.delta_row. What attend_each() does, in as few
  // launches as the method's kernels allow: a method whose kernel takes a varlen batch overrides
  // it; one that needs something per chunk (vertical-slash's estimate) keeps this.
  virtual void attend_varlen(const VarlenPrefillArgs& batch, const std::vector<VarlenChunk>& chunks,
                             cudaStream_t stream) {
    attend_each(batch, chunks, stream);
  }

 protected:
  // prepare() then attend() for each chunk in turn, through the single-sequence calls.
  void attend_each(const VarlenPrefillArgs& batch, const std::vector<VarlenChunk>& chunks, cudaStream_t stream);
};

struct CudaPrefillMethodInfo {
  attention::PrefillKind kind = attention::PrefillKind::Dense;  // filled in by the registry
  // Throws InputError for knobs its kernels do not support.
  std::unique_ptr<CudaPrefillMethod> (*create)(const CudaPrefillSetup& setup) = nullptr;
};

const std::vector<CudaPrefillMethodInfo>& cuda_prefill_methods();
const CudaPrefillMethodInfo& cuda_prefill_method(attention::PrefillKind kind);

// Each prefill method's row, defined in its own file (backend/cuda/methods/<name>_prefill.cpp).
namespace methods {
#define DELTAINFER_PREFILL_METHOD(kind, name) CudaPrefillMethodInfo name##_prefill();
#include "attention/methods/prefill_methods.def"
#undef DELTAINFER_PREFILL_METHOD
}  // namespace methods

}  // namespace deltainfer::cuda
