#include "backend/cuda/cuda_weights.h"

#include <algorithm>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/synthetic_weights.h"
#include "core/error.h"
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

  // Fills the buffers of `owner` (LayerWeights or CudaWeights) with `tensors`, each in the buffer its
  // role's slot names, tensors that share a buffer stacked in their slots' order.
  template <typename Owner>
  void load_into(Owner& owner, const std::vector<model::ModelTensor>& tensors, bool fused_qkv) const {
    std::vector<std::pair<DeviceBuffer<bf16> Owner::*, std::map<int, std::string>>> stacks;
    for (const model::ModelTensor& tensor : tensors) {
      const DeviceSlot<Owner> slot = Owner::slot(tensor.spec->role, fused_qkv);
      if (slot.buffer == nullptr) {
        throw_error("{}: the CUDA backend has no place for tensor '{}'", source_.path(), tensor.name);
      }
      auto stack = std::find_if(stacks.begin(), stacks.end(), [&](const auto& s) { return s.first == slot.buffer; });
      if (stack == stacks.end()) stack = stacks.insert(stacks.end(), {slot.buffer, {}});
      stack->second[slot.stack_index] = tensor.name;
    }
    for (const auto& [buffer, names] : stacks) {
      std::vector<std::string> ordered;
      for (const auto& entry : names) ordered.push_back(entry.second);
      owner.*buffer = load(ordered);
    }
  }

 private:
  DeviceBuffer<bf16> load(const std::vector<std::string>& names) const {
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
  up.load_into(w, model::global_tensors(config), fused_qkv(config));
  w.layers.resize(as_size(config.n_layers));
  for (int i = 0; i < config.n_layers; ++i) {
    up.load_into(w.layers[as_size(i)], model::layer_tensors(config, i), fused_qkv(config));
  }
  CUDA_CHECK(cudaStreamSynchronize(stream));
  return w;
}

}  // namespace deltainfer::cuda
