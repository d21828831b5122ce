#pragma once
// The model's weights for the CPU backend, in canonical layout (model_source.h). Norms, biases and
// the embedding table are f32; each matrix is a Weight: kept in its GGUF type when that type has a
// quantized kernel and native storage is chosen, else dequantized to f32.
#include <vector>

#include "backend/cpu/weight.h"
#include "model/model_source.h"

namespace deltainfer::backend::cpu {

// F32: every matrix dequantized (the reference path the golden tests use). Native: matrices keep
// their GGUF type where a quantized kernel exists (others fall back to f32 per tensor). The
// environment variable DELTAINFER_CPU_WEIGHTS=native|f32 picks (default native).
enum class WeightStorage { F32, Native };
WeightStorage weight_storage_from_env();

struct LayerWeights {
  std::vector<float> attn_norm;
  Weight wq, wk, wv, wo;
  std::vector<float> bq, bk, bv;          // empty unless config.qkv_bias
  std::vector<float> q_norm, k_norm;      // empty unless config.qk_norm
  std::vector<float> ffn_norm;
  Weight w_gate, w_up, w_down;
};

struct CpuWeights {
  std::vector<float> token_embd;   // [vocab, d_model], f32 for the embedding lookup
  std::vector<float> output_norm;  // [d_model]
  Weight output;                   // [vocab, d_model]; token_embd's values or blocks when tied
  std::vector<LayerWeights> layers;

  static CpuWeights load(const model::ModelSource& source, WeightStorage storage = weight_storage_from_env());
};

}  // namespace deltainfer::backend::cpu
