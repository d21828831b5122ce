#include "model/host_memory_plan.h"

#include "io/gguf.h"
#include "model/model_source_impl.h"

namespace deltainfer::model {
namespace {

uint64_t element_count(const std::vector<int64_t>& shape) {
  uint64_t n = 1;
  for (int64_t dim : shape) n *= static_cast<uint64_t>(dim);
  return n;
}

}  // namespace

ModelMemory model_memory(const ModelSource& source) {
  const ModelConfig& config = source.config();
  ModelMemory memory;
  for (const auto& [name, shape] : expected_tensor_shapes(config)) {
    memory.f32_weight_bytes += element_count(shape) * sizeof(float);
  }
  if (const io::GgufFile* file = source.gguf()) {
    uint64_t stored = 0;
    for (const io::GgufTensorInfo& tensor : file->tensors()) stored += tensor.n_bytes;
    memory.stored_weight_bytes = stored;
  }
  memory.kv_bytes_per_token =
      2 * static_cast<uint64_t>(config.n_layers) * static_cast<uint64_t>(config.kv_dim()) * sizeof(float);
  return memory;
}

}  // namespace deltainfer::model
