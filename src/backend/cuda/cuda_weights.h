#pragma once
// The model's weights on the device in bf16: uploaded from the model file, or generated on the
// device for synthetic models. Q, K and V are stacked for one GEMM (and gate with up) unless the
// model's per-head q/k norms need them apart. Which tensors there are comes from the architecture's
// table (model/architecture.h); slot() says which buffer each role fills.
#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <vector>

#include "backend/cuda/device_buffer.h"
#include "model/architecture.h"
#include "model/model_source.h"
#include "model/shard_plan.h"

namespace deltainfer::cuda {

// The device buffer a tensor fills in Owner, and its place among the tensors stacked along their rows
// into that buffer (q, k, v into wqkv; gate, up into w_gate_up); buffer nullptr: no place for it.
template <typename Owner>
struct DeviceSlot {
  DeviceBuffer<__nv_bfloat16> Owner::*buffer = nullptr;
  int stack_index = 0;
};

struct LayerWeights {
  // wqkv / bqkv: q, k and v stacked for one GEMM; wq, wk, wv, bq, bk, bv only when per-head q/k
  // norms need them apart.
  DeviceBuffer<__nv_bfloat16> attn_norm, wqkv, bqkv, wq, wk, wv, wo, bq, bk, bv, q_norm, k_norm, ffn_norm, w_gate_up,
      w_down;

  static DeviceSlot<LayerWeights> slot(model::TensorRole role, bool fused_qkv);
};

struct CudaWeights {
  DeviceBuffer<__nv_bfloat16> token_embd, output_norm, output;  // output empty when tied
  std::vector<LayerWeights> layers;

  // One GEMM for q, k and v unless per-head q/k norms (Qwen3) need them in separate buffers.
  static bool fused_qkv(const model::ModelConfig& config) { return !config.qk_norm; }
  const __nv_bfloat16* output_matrix(const model::ModelConfig& config) const {
    return config.tied_embeddings ? token_embd.data() : output.data();
  }

  static DeviceSlot<CudaWeights> slot(model::TensorRole role, bool fused_qkv);
  // The part of the model `shard` says its rank holds (all of it at degree 1); the vocabulary
  // tensors keep shard.vocab_stride() + 1 rows, zero past the rank's own (see cuda_weights.cpp).
  static CudaWeights load(const model::ModelSource& source, const model::ShardPlan& shard, cudaStream_t stream);
};

inline DeviceSlot<LayerWeights> LayerWeights::slot(model::TensorRole role, bool fused_qkv) {
  using R = model::TensorRole;
  using L = LayerWeights;
  switch (role) {
    case R::AttnNorm: return {&L::attn_norm};
    case R::AttnQ: return fused_qkv ? DeviceSlot<L>{&L::wqkv, 0} : DeviceSlot<L>{&L::wq};
    case R::AttnK: return fused_qkv ? DeviceSlot<L>{&L::wqkv, 1} : DeviceSlot<L>{&L::wk};
    case R::AttnV: return fused_qkv ? DeviceSlot<L>{&L::wqkv, 2} : DeviceSlot<L>{&L::wv};
    case R::AttnOutput: return {&L::wo};
    case R::AttnQBias: return fused_qkv ? DeviceSlot<L>{&L::bqkv, 0} : DeviceSlot<L>{&L::bq};
    case R::AttnKBias: return fused_qkv ? DeviceSlot<L>{&L::bqkv, 1} : DeviceSlot<L>{&L::bk};
    case R::AttnVBias: return fused_qkv ? DeviceSlot<L>{&L::bqkv, 2} : DeviceSlot<L>{&L::bv};
    case R::AttnQNorm: return {&L::q_norm};
    case R::AttnKNorm: return {&L::k_norm};
    case R::FfnNorm: return {&L::ffn_norm};
    case R::FfnGate: return {&L::w_gate_up, 0};
    case R::FfnUp: return {&L::w_gate_up, 1};
    case R::FfnDown: return {&L::w_down};
    default: return {};
  }
}

inline DeviceSlot<CudaWeights> CudaWeights::slot(model::TensorRole role, bool /*fused_qkv*/) {
  using R = model::TensorRole;
  switch (role) {
    case R::TokenEmbedding: return {&CudaWeights::token_embd};
    case R::OutputNorm: return {&CudaWeights::output_norm};
    case R::Output: return {&CudaWeights::output};
    default: return {};
  }
}

}  // namespace deltainfer::cuda
