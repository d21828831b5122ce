#include "backend/cuda/cuda_weights.h"

#include <fmt/format.h>

#include <initializer_list>
#include <string>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/synthetic_weights.h"
#include "io/half.h"

namespace deltainfer::cuda {
namespace {

using bf16 = __nv_bfloat16;

size_t as_size(int64_t value) { return static_cast<size_t>(value); }

// Uploads (or generates, for synthetic models) tensors into bf16 device buffers; several tensors
// may be stacked along their rows into one buffer (one GEMM for gate and up).
class WeightUploader {
 public:
  WeightUploader(const model::ModelSource& source, cudaStream_t stream) : source_(source), stream_(stream) {}

  DeviceBuffer<bf16> load(std::initializer_list<std::string> names) const {
    int64_t total = 0;
    for (const std::string& name : names) total += element_count(name);
    DeviceBuffer<bf16> buffer(as_size(total));
    int64_t offset = 0;
    for (const std::string& name : names) {
      const int64_t count = element_count(name);
      if (source_.is_synthetic()) {
        const std::vector<int64_t> shape = source_.tensor_shape(name);
        fill_synthetic_weights(buffer.data() + offset, count, model::synthetic_tensor_seed(name),
                               model::synthetic_tensor_scale(name, shape.back()), stream_);
      } else {
        upload(name, count, buffer.data() + offset);
      }
      offset += count;
    }
    return buffer;
  }

  DeviceBuffer<bf16> load_if(bool present, const std::string& name) const {
    return present ? load({name}) : DeviceBuffer<bf16>();
  }

 private:
  int64_t element_count(const std::string& name) const {
    int64_t count = 1;
    for (int64_t dim : source_.tensor_shape(name)) count *= dim;
    return count;
  }

  void upload(const std::string& name, int64_t count, bf16* dst) const {
    std::vector<float> values(as_size(count));
    source_.read_f32(name, values.data(), count);
    std::vector<uint16_t> bits(as_size(count));
    for (size_t i = 0; i < bits.size(); ++i) bits[i] = io::f32_to_bf16(values[i]);
    CUDA_CHECK(cudaMemcpy(dst, bits.data(), bits.size() * sizeof(uint16_t), cudaMemcpyHostToDevice));
  }

  const model::ModelSource& source_;
  cudaStream_t stream_;
};

}  // namespace

CudaWeights CudaWeights::load(const model::ModelSource& source, cudaStream_t stream) {
  const model::ModelConfig& config = source.config();
  CudaWeights w;
  const WeightUploader up(source, stream);
  w.token_embd = up.load({"token_embd.weight"});
  w.output_norm = up.load({"output_norm.weight"});
  if (!config.tied_embeddings) w.output = up.load({"output.weight"});
  w.layers.resize(as_size(config.n_layers));
  for (int i = 0; i < config.n_layers; ++i) {
    const std::string p = fmt::format("blk.{}.", i);
    LayerWeights& l = w.layers[as_size(i)];
    l.attn_norm = up.load({p + "attn_norm.weight"});
    if (fused_qkv(config)) {
      l.wqkv = up.load({p + "attn_q.weight", p + "attn_k.weight", p + "attn_v.weight"});
      if (config.qkv_bias) l.bqkv = up.load({p + "attn_q.bias", p + "attn_k.bias", p + "attn_v.bias"});
    } else {
      l.wq = up.load({p + "attn_q.weight"});
      l.wk = up.load({p + "attn_k.weight"});
      l.wv = up.load({p + "attn_v.weight"});
      l.bq = up.load_if(config.qkv_bias, p + "attn_q.bias");
      l.bk = up.load_if(config.qkv_bias, p + "attn_k.bias");
      l.bv = up.load_if(config.qkv_bias, p + "attn_v.bias");
    }
    l.wo = up.load({p + "attn_output.weight"});
    l.q_norm = up.load_if(config.qk_norm, p + "attn_q_norm.weight");
    l.k_norm = up.load_if(config.qk_norm, p + "attn_k_norm.weight");
    l.ffn_norm = up.load({p + "ffn_norm.weight"});
    l.w_gate_up = up.load({p + "ffn_gate.weight", p + "ffn_up.weight"});
    l.w_down = up.load({p + "ffn_down.weight"});
  }
  CUDA_CHECK(cudaStreamSynchronize(stream));
  return w;
}

}  // namespace deltainfer::cuda
