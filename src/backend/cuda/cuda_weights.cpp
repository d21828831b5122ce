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

bool vocabulary_rows(model::TensorRole role) {
  return role == model::TensorRole::TokenEmbedding || role == model::TensorRole::Output;
}

// Uploads (or generates, for synthetic models) the rank's part of tensors (model::ShardPlan) into
// bf16 device buffers; several tensors may be stacked along their rows into one buffer (one GEMM
// for gate and up). A vocabulary tensor keeps vocab_stride() + 1 rows, zero past the rank's own:
// the logits of every rank gather as equal blocks, and the last row is the zero embedding of
// tokens another rank holds.
class WeightUploader {
 public:
  WeightUploader(const model::ModelSource& source, const model::ShardPlan& shard, cudaStream_t stream)
      : source_(source), shard_(shard), stream_(stream) {}

  // Fills the buffers of `owner` (LayerWeights or CudaWeights) with `tensors`, each in the buffer its
  // role's slot names, tensors that share a buffer stacked in their slots' order.
  template <typename Owner>
  void load_into(Owner& owner, const std::vector<model::ModelTensor>& tensors, bool fused_qkv) const {
    std::vector<std::pair<DeviceBuffer<bf16> Owner::*, std::map<int, const model::ModelTensor*>>> stacks;
    for (const model::ModelTensor& tensor : tensors) {
      const DeviceSlot<Owner> slot = Owner::slot(tensor.spec->role, fused_qkv);
      if (slot.buffer == nullptr) {
        throw_error("{}: the CUDA backend has no place for tensor '{}'", source_.path(), tensor.name);
      }
      auto stack = std::find_if(stacks.begin(), stacks.end(), [&](const auto& s) { return s.first == slot.buffer; });
      if (stack == stacks.end()) stack = stacks.insert(stacks.end(), {slot.buffer, {}});
      stack->second[slot.stack_index] = &tensor;
    }
    for (const auto& [buffer, stacked] : stacks) {
      std::vector<const model::ModelTensor*> ordered;
      for (const auto& entry : stacked) ordered.push_back(entry.second);
      owner.*buffer = load(ordered);
    }
  }

 private:
  // The rank's part of one tensor and the rows it keeps for it.
  struct Held {
    std::vector<int64_t> shape;  // the full tensor's
    model::TensorSlice slice;
    int64_t rows = 0;  // >= slice.rows.count (vocabulary padding)
    int64_t elements() const { return rows * slice.cols.count; }
  };

  Held held(const model::ModelTensor& tensor) const {
    Held h;
    h.shape = source_.tensor_shape(tensor.name);
    h.slice = shard_.slice(tensor.spec->role, h.shape);
    h.rows = vocabulary_rows(tensor.spec->role) ? shard_.vocab_stride() + 1 : h.slice.rows.count;
    return h;
  }

  DeviceBuffer<bf16> load(const std::vector<const model::ModelTensor*>& tensors) const {
    int64_t total = 0;
    for (const model::ModelTensor* tensor : tensors) total += held(*tensor).elements();
    DeviceBuffer<bf16> buffer(as_size(total));
    int64_t offset = 0;
    for (const model::ModelTensor* tensor : tensors) {
      const Held h = held(*tensor);
      bf16* dst = buffer.data() + offset;
      if (h.rows > h.slice.rows.count) CUDA_CHECK(cudaMemsetAsync(dst, 0, as_size(h.elements()) * sizeof(bf16), stream_));
      if (source_.is_synthetic()) {
        generate(tensor->name, h, dst);
      } else {
        upload(tensor->name, h, dst);
      }
      offset += h.elements();
    }
    return buffer;
  }

  static int64_t element_count(const std::vector<int64_t>& shape) {
    int64_t count = 1;
    for (int64_t dim : shape) count *= dim;
    return count;
  }

  static bool whole(const Held& h) {
    return h.slice.rows.count * h.slice.cols.count == element_count(h.shape);
  }

  // Synthetic weights are a function of the element's index in the full tensor: generate the full
  // tensor on the device and keep the rank's part.
  void generate(const std::string& name, const Held& h, bf16* dst) const {
    const int64_t count = element_count(h.shape);
    const uint64_t seed = model::synthetic_tensor_seed(name);
    const float scale = model::synthetic_tensor_scale(name, h.shape.back());
    if (whole(h)) {
      fill_synthetic_weights(dst, count, seed, scale, stream_);
      return;
    }
    DeviceBuffer<bf16> full(as_size(count));
    fill_synthetic_weights(full.data(), count, seed, scale, stream_);
    const int64_t cols = h.shape.size() == 2 ? h.shape[1] : 1;
    const model::TensorSlice& s = h.slice;
    CUDA_CHECK(cudaMemcpy2DAsync(dst, as_size(s.cols.count) * sizeof(bf16),
                                 full.data() + s.rows.begin * cols + s.cols.begin, as_size(cols) * sizeof(bf16),
                                 as_size(s.cols.count) * sizeof(bf16), as_size(s.rows.count), cudaMemcpyDeviceToDevice,
                                 stream_));
    CUDA_CHECK(cudaStreamSynchronize(stream_));  // before `full` is freed
  }

  void upload(const std::string& name, const Held& h, bf16* dst) const {
    const int64_t count = element_count(h.shape);
    std::vector<float> values(as_size(count));
    source_.read_f32(name, values.data(), count);
    if (!whole(h)) values = model::slice_matrix(values.data(), h.shape[0], h.shape.size() == 2 ? h.shape[1] : 1, h.slice);
    std::vector<uint16_t> bits(values.size());
    for (size_t i = 0; i < bits.size(); ++i) bits[i] = io::f32_to_bf16(values[i]);
    CUDA_CHECK(cudaStreamSynchronize(stream_));  // the padding's memset before the synchronous copy
    CUDA_CHECK(cudaMemcpy(dst, bits.data(), bits.size() * sizeof(uint16_t), cudaMemcpyHostToDevice));
  }

  const model::ModelSource& source_;
  const model::ShardPlan& shard_;
  cudaStream_t stream_;
};

}  // namespace

CudaWeights CudaWeights::load(const model::ModelSource& source, const model::ShardPlan& shard, cudaStream_t stream) {
  const model::ModelConfig& config = source.config();
  CudaWeights w;
  const WeightUploader up(source, shard, stream);
  up.load_into(w, model::global_tensors(config), fused_qkv(config));
  w.layers.resize(as_size(config.n_layers));
  for (int i = 0; i < config.n_layers; ++i) {
    up.load_into(w.layers[as_size(i)], model::layer_tensors(config, i), fused_qkv(config));
  }
  CUDA_CHECK(cudaStreamSynchronize(stream));
  return w;
}

}  // namespace deltainfer::cuda
