#pragma once
// The model's weights on the device in bf16: uploaded from the model file, or generated on the
// device for synthetic models. Q, K and V are stacked for one GEMM (and gate with up) unless the
// model's per-head q/k norms need them apart.
#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <vector>

#include "backend/cuda/device_buffer.h"
#include "model/model_source.h"

namespace deltainfer::cuda {

struct LayerWeights {
  // wqkv / bqkv: q, k and v stacked for one GEMM; wq, wk, wv, bq, bk, bv only when per-head q/k
  // norms need them apart.
  DeviceBuffer<__nv_bfloat16> attn_norm, wqkv, bqkv, wq, wk, wv, wo, bq, bk, bv, q_norm, k_norm, ffn_norm, w_gate_up,
      w_down;
};

struct CudaWeights {
  DeviceBuffer<__nv_bfloat16> token_embd, output_norm, output;  // output empty when tied
  std::vector<LayerWeights> layers;

  // One GEMM for q, k and v unless per-head q/k norms (Qwen3) need them in separate buffers.
  static bool fused_qkv(const model::ModelConfig& config) { return !config.qk_norm; }
  const __nv_bfloat16* output_matrix(const model::ModelConfig& config) const {
    return config.tied_embeddings ? token_embd.data() : output.data();
  }

  static CudaWeights load(const model::ModelSource& source, cudaStream_t stream);
};

}  // namespace deltainfer::cuda
