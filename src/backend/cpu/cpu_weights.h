#pragma once
// The model's weights dequantized to f32 for the CPU backend, in canonical layout (model_source.h).
#include <vector>

#include "model/model_source.h"

namespace deltainfer::backend::cpu {

struct LayerWeights {
  std::vector<float> attn_norm, wq, wk, wv, wo;
  std::vector<float> bq, bk, bv;          // empty unless config.qkv_bias
  std::vector<float> q_norm, k_norm;      // empty unless config.qk_norm
  std::vector<float> ffn_norm, w_gate, w_up, w_down;
};

struct CpuWeights {
  std::vector<float> token_embd;   // [vocab, d_model]
  std::vector<float> output_norm;  // [d_model]
  std::vector<float> output;       // [vocab, d_model]; empty when tied to token_embd
  std::vector<LayerWeights> layers;

  const float* output_matrix() const { return output.empty() ? token_embd.data() : output.data(); }

  static CpuWeights load(const model::ModelSource& source);
};

}  // namespace deltainfer::backend::cpu
