#include "backend/cpu/cpu_weights.h"

#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>

#include "backend/cpu/quant/dot_kernels.h"
#include "core/error.h"

namespace deltainfer::backend::cpu {
namespace {

bool is_float_type(io::GgmlType type) {
  return type == io::GgmlType::F32 || type == io::GgmlType::F16 || type == io::GgmlType::BF16;
}

class TensorReader {
 public:
  TensorReader(const model::ModelSource& source, WeightStorage storage) : source_(source), storage_(storage) {}

  std::vector<float> read(const std::string& name, const std::vector<int64_t>& expected_shape) const {
    check_shape(name, expected_shape);
    int64_t count = 1;
    for (int64_t dim : expected_shape) count *= dim;
    std::vector<float> values(static_cast<size_t>(count));
    source_.read_f32(name, values.data(), count);
    return values;
  }

  // Reads the tensor into the slot its role has in `owner` (LayerWeights or CpuWeights).
  template <typename Owner>
  void read_into(Owner& owner, const model::ModelTensor& tensor) {
    const WeightSlot<Owner> slot = Owner::slot(tensor.spec->role);
    if (slot.vector != nullptr) {
      owner.*slot.vector = read(tensor.name, tensor.shape);
    } else if (slot.matrix != nullptr && tensor.shape.size() == 2) {
      owner.*slot.matrix = read_matrix(tensor.name, tensor.shape[0], tensor.shape[1]);
    } else {
      throw_error("{}: the CPU backend has no place for tensor '{}'", source_.path(), tensor.name);
    }
  }

  Weight read_matrix(const std::string& name, int64_t rows, int64_t cols) {
    Weight weight;
    weight.rows = rows;
    weight.cols = cols;
    if (std::optional<quant::QuantizedMatrix> blocks = read_blocks(name, rows, cols)) {
      weight.quantized = std::move(blocks);
    } else {
      weight.values = read(name, {rows, cols});
    }
    return weight;
  }

 private:
  void check_shape(const std::string& name, const std::vector<int64_t>& expected_shape) const {
    const std::vector<int64_t> shape = source_.tensor_shape(name);
    if (shape != expected_shape) {
      throw_input_error("{}: tensor '{}' has shape [{}], expected [{}]", source_.path(), name,
                        fmt::join(shape, ", "), fmt::join(expected_shape, ", "));
    }
  }

  // The tensor's raw blocks when native storage is on and its type has a kernel.
  std::optional<quant::QuantizedMatrix> read_blocks(const std::string& name, int64_t rows, int64_t cols) {
    if (storage_ != WeightStorage::Native) return std::nullopt;
    check_shape(name, {rows, cols});
    const std::optional<model::RawTensor> raw = source_.raw_tensor(name);
    if (!raw || is_float_type(raw->type)) return std::nullopt;
    if (!quant::has_quantized_kernel(raw->type) || cols % io::ggml_type_traits(raw->type).block_size != 0) {
      note_fallback(raw->type);
      return std::nullopt;
    }
    quant::QuantizedMatrix matrix;
    matrix.type = raw->type;
    matrix.rows = rows;
    matrix.cols = cols;
    matrix.blocks.resize(static_cast<size_t>(rows * matrix.row_bytes()));
    std::memcpy(matrix.blocks.data(), raw->data, matrix.blocks.size());
    return matrix;
  }

  void note_fallback(io::GgmlType type) {
    if (!fallback_types_.insert(type).second) return;
    std::fprintf(stderr, "deltainfer: %s: no quantized CPU kernel for %s tensors; dequantizing them to f32\n",
                 source_.path().c_str(), io::ggml_type_name(type));
  }

  const model::ModelSource& source_;
  WeightStorage storage_;
  std::set<io::GgmlType> fallback_types_;
};

}  // namespace

uint64_t native_weight_bytes(const io::GgufFile& file) {
  uint64_t bytes = 0;
  for (const io::GgufTensorInfo& tensor : file.tensors()) {
    bytes += quant::has_quantized_kernel(tensor.type) ? tensor.n_bytes : tensor.n_elements * sizeof(float);
  }
  return bytes;
}

WeightStorage weight_storage_from_env() {
  const char* value = std::getenv("DELTAINFER_CPU_WEIGHTS");
  // Native by default: weights stay in their GGUF type (4-8x less memory, 2-3x faster decode).
  // f32 is the reference path: the golden tests against HF transformers (1e-3 on logits) ask for
  // it, since 8-bit activations move logits by ~0.7 (as llama.cpp's CPU path does).
  if (value == nullptr || std::strcmp(value, "native") == 0) return WeightStorage::Native;
  if (std::strcmp(value, "f32") == 0) return WeightStorage::F32;
  throw_input_error("DELTAINFER_CPU_WEIGHTS is '{}'; expected 'f32' or 'native'", value);
}

CpuWeights CpuWeights::load(const model::ModelSource& source, WeightStorage storage) {
  const model::ModelConfig& c = source.config();
  TensorReader reader(source, storage);
  CpuWeights w;
  for (const model::ModelTensor& tensor : model::global_tensors(c)) reader.read_into(w, tensor);
  w.tied_output = c.tied_embeddings;  // one copy of the table serves the lookup and the output
  w.layers.resize(static_cast<size_t>(c.n_layers));
  for (int i = 0; i < c.n_layers; ++i) {
    for (const model::ModelTensor& tensor : model::layer_tensors(c, i)) {
      reader.read_into(w.layers[static_cast<size_t>(i)], tensor);
    }
  }
  return w;
}

}  // namespace deltainfer::backend::cpu
