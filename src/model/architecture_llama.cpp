// Llama (Llama 2/3, SmolLM2): RMSNorm, GQA attention with RoPE, SwiGLU MLP. The q, k and v
// projections may carry biases (llama.cpp and HF's attention_bias allow them; Qwen2 always has them).
#include "model/architecture_tables.h"

namespace deltainfer::model {

ArchitectureTable llama_family_table(Architecture id, const char* name, RopeStyle gguf_rope_style) {
  using R = TensorRole;
  using D = Dim;
  ArchitectureTable table{id, name, gguf_rope_style, {}, {}, "rope_freqs.weight"};
  table.global_tensors = {
      {R::TokenEmbedding, "token_embd.weight", "model.embed_tokens.weight", {D::Vocab, D::DModel}},
      {R::OutputNorm, "output_norm.weight", "model.norm.weight", {D::DModel}},
      {R::Output, "output.weight", "lm_head.weight", {D::Vocab, D::DModel}, &ModelConfig::tied_embeddings, false},
  };
  table.layer_tensors = {
      {R::AttnNorm, "attn_norm.weight", "input_layernorm.weight", {D::DModel}},
      {R::FfnNorm, "ffn_norm.weight", "post_attention_layernorm.weight", {D::DModel}},
      {R::AttnQ, "attn_q.weight", "self_attn.q_proj.weight", {D::QDim, D::DModel}},
      {R::AttnK, "attn_k.weight", "self_attn.k_proj.weight", {D::KvDim, D::DModel}},
      {R::AttnV, "attn_v.weight", "self_attn.v_proj.weight", {D::KvDim, D::DModel}},
      {R::AttnOutput, "attn_output.weight", "self_attn.o_proj.weight", {D::DModel, D::QDim}},
      {R::AttnQBias, "attn_q.bias", "self_attn.q_proj.bias", {D::QDim}, &ModelConfig::qkv_bias},
      {R::AttnKBias, "attn_k.bias", "self_attn.k_proj.bias", {D::KvDim}, &ModelConfig::qkv_bias},
      {R::AttnVBias, "attn_v.bias", "self_attn.v_proj.bias", {D::KvDim}, &ModelConfig::qkv_bias},
      {R::FfnGate, "ffn_gate.weight", "mlp.gate_proj.weight", {D::Ffn, D::DModel}},
      {R::FfnUp, "ffn_up.weight", "mlp.up_proj.weight", {D::Ffn, D::DModel}},
      {R::FfnDown, "ffn_down.weight", "mlp.down_proj.weight", {D::DModel, D::Ffn}},
  };
  return table;
}

const ArchitectureTable& llama_architecture() {
  static const ArchitectureTable table = llama_family_table(Architecture::Llama, "llama", RopeStyle::Interleaved);
  return table;
}

}  // namespace deltainfer::model
