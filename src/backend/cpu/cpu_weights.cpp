#include "backend/cpu/cpu_weights.h"

#include <fmt/format.h>

#include "core/error.h"

namespace deltainfer::backend::cpu {
namespace {

class TensorReader {
 public:
  explicit TensorReader(const model::ModelSource& source) : source_(source) {}

  std::vector<float> read(const std::string& name, std::initializer_list<int64_t> expected_shape) const {
    const std::vector<int64_t> shape = source_.tensor_shape(name);
    if (shape != std::vector<int64_t>(expected_shape)) {
      throw_input_error("{}: tensor '{}' has shape [{}], expected [{}]", source_.path(), name,
                        fmt::join(shape, ", "), fmt::join(expected_shape, ", "));
    }
    int64_t count = 1;
    for (int64_t dim : shape) count *= dim;
    std::vector<float> values(static_cast<size_t>(count));
    source_.read_f32(name, values.data(), count);
    return values;
  }

 private:
  const model::ModelSource& source_;
};

}  // namespace

CpuWeights CpuWeights::load(const model::ModelSource& source) {
  const model::ModelConfig& c = source.config();
  const TensorReader reader(source);
  CpuWeights w;
  w.token_embd = reader.read("token_embd.weight", {c.vocab_size, c.d_model});
  w.output_norm = reader.read("output_norm.weight", {c.d_model});
  if (!c.tied_embeddings) w.output = reader.read("output.weight", {c.vocab_size, c.d_model});
  w.layers.resize(static_cast<size_t>(c.n_layers));
  for (int i = 0; i < c.n_layers; ++i) {
    const std::string p = fmt::format("blk.{}.", i);
    LayerWeights& l = w.layers[static_cast<size_t>(i)];
    l.attn_norm = reader.read(p + "attn_norm.weight", {c.d_model});
    l.wq = reader.read(p + "attn_q.weight", {c.q_dim(), c.d_model});
    l.wk = reader.read(p + "attn_k.weight", {c.kv_dim(), c.d_model});
    l.wv = reader.read(p + "attn_v.weight", {c.kv_dim(), c.d_model});
    l.wo = reader.read(p + "attn_output.weight", {c.d_model, c.q_dim()});
    if (c.qkv_bias) {
      l.bq = reader.read(p + "attn_q.bias", {c.q_dim()});
      l.bk = reader.read(p + "attn_k.bias", {c.kv_dim()});
      l.bv = reader.read(p + "attn_v.bias", {c.kv_dim()});
    }
    if (c.qk_norm) {
      l.q_norm = reader.read(p + "attn_q_norm.weight", {c.head_dim});
      l.k_norm = reader.read(p + "attn_k_norm.weight", {c.head_dim});
    }
    l.ffn_norm = reader.read(p + "ffn_norm.weight", {c.d_model});
    l.w_gate = reader.read(p + "ffn_gate.weight", {c.ffn_dim, c.d_model});
    l.w_up = reader.read(p + "ffn_up.weight", {c.ffn_dim, c.d_model});
    l.w_down = reader.read(p + "ffn_down.weight", {c.d_model, c.ffn_dim});
  }
  return w;
}

}  // namespace deltainfer::backend::cpu
