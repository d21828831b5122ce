#pragma once
// The model's weights for the CPU backend, in canonical layout (model_source.h). Norms and biases
// are f32; each matrix is a Weight: kept in its GGUF type when that type has a
// quantized kernel and native storage is chosen, else dequantized to f32. Which tensors there are
// comes from the architecture's table (model/architecture.h); slot() says where each role goes.
#include <cstdint>
#include <vector>

#include "backend/cpu/weight.h"
#include "io/gguf.h"
#include "model/architecture.h"
#include "model/model_source.h"

namespace deltainfer::backend::cpu {

// F32: every matrix dequantized (the reference path the golden tests use). Native: matrices keep
// their GGUF type where a quantized kernel exists (others fall back to f32 per tensor). The
// environment variable DELTAINFER_CPU_WEIGHTS=native|f32 picks (default native).
enum class WeightStorage { F32, Native };
WeightStorage weight_storage_from_env();

// Bytes CpuWeights holds for `file` under WeightStorage::Native: the blocks of every type a CPU
// kernel reads stay as stored (the token embedding too: a lookup dequantizes its row); any other
// tensor becomes f32. What the host memory plan counts before loading.
uint64_t native_weight_bytes(const io::GgufFile& file);

// Where a tensor goes in Owner: an f32 vector (norms, biases) or a Weight
// (a matrix); neither when this backend has no place for the role.
template <typename Owner>
struct WeightSlot {
  std::vector<float> Owner::*vector = nullptr;
  Weight Owner::*matrix = nullptr;
};

struct LayerWeights {
  std::vector<float> attn_norm;
  Weight wq, wk, wv, wo;
  std::vector<float> bq, bk, bv;          // empty unless config.qkv_bias
  std::vector<float> q_norm, k_norm;      // empty unless config.qk_norm
  std::vector<float> ffn_norm;
  Weight w_gate, w_up, w_down;

  static WeightSlot<LayerWeights> slot(model::TensorRole role);
};

struct CpuWeights {
  // [vocab, d_model], in its GGUF type where it has a kernel: a lookup dequantizes only its row
  // (Qwen2.5-0.5B's table is 545 MB as f32, 94 MB as its Q5_0 blocks).
  Weight token_embd;
  std::vector<float> output_norm;  // [d_model]
  Weight output;                   // [vocab, d_model]; empty when tied (output_weight() is token_embd)
  bool tied_output = false;

  const Weight& output_weight() const { return tied_output ? token_embd : output; }
  std::vector<LayerWeights> layers;

  static WeightSlot<CpuWeights> slot(model::TensorRole role);
  static CpuWeights load(const model::ModelSource& source, WeightStorage storage = weight_storage_from_env());
};

inline WeightSlot<LayerWeights> LayerWeights::slot(model::TensorRole role) {
  using R = model::TensorRole;
  using L = LayerWeights;
  switch (role) {
    case R::AttnNorm: return {&L::attn_norm, nullptr};
    case R::AttnQ: return {nullptr, &L::wq};
    case R::AttnK: return {nullptr, &L::wk};
    case R::AttnV: return {nullptr, &L::wv};
    case R::AttnOutput: return {nullptr, &L::wo};
    case R::AttnQBias: return {&L::bq, nullptr};
    case R::AttnKBias: return {&L::bk, nullptr};
    case R::AttnVBias: return {&L::bv, nullptr};
    case R::AttnQNorm: return {&L::q_norm, nullptr};
    case R::AttnKNorm: return {&L::k_norm, nullptr};
    case R::FfnNorm: return {&L::ffn_norm, nullptr};
    case R::FfnGate: return {nullptr, &L::w_gate};
    case R::FfnUp: return {nullptr, &L::w_up};
    case R::FfnDown: return {nullptr, &L::w_down};
    default: return {};
  }
}

inline WeightSlot<CpuWeights> CpuWeights::slot(model::TensorRole role) {
  using R = model::TensorRole;
  switch (role) {
    case R::TokenEmbedding: return {nullptr, &CpuWeights::token_embd};
    case R::OutputNorm: return {&CpuWeights::output_norm, nullptr};
    case R::Output: return {nullptr, &CpuWeights::output};
    default: return {};
  }
}

}  // namespace deltainfer::backend::cpu
