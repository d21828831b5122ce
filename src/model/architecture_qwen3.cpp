// Qwen3: Qwen2's layout plus an RMSNorm over each head of q and k before RoPE, whose gains are two
// [head_dim] tensors per layer (the forward passes apply them where ModelConfig::qk_norm is set).
#include "model/architecture_tables.h"

namespace deltainfer::model {

const ArchitectureTable& qwen3_architecture() {
  static const ArchitectureTable table = [] {
    ArchitectureTable t = llama_family_table(Architecture::Qwen3, "qwen3", RopeStyle::HalfSplit);
    t.layer_tensors.push_back({TensorRole::AttnQNorm, "attn_q_norm.weight", "self_attn.q_norm.weight",
                               {Dim::HeadDim}, &ModelConfig::qk_norm});
    t.layer_tensors.push_back({TensorRole::AttnKNorm, "attn_k_norm.weight", "self_attn.k_norm.weight",
                               {Dim::HeadDim}, &ModelConfig::qk_norm});
    return t;
  }();
  return table;
}

}  // namespace deltainfer::model
