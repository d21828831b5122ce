#pragma once
// ModelSource: a model on disk, whatever its format (one GGUF file, or a directory with
// config.json + *.safetensors). It yields the validated ModelConfig and tensors by their canonical
// (GGUF-style) names, dequantized on request.
//
// Canonical names are GGUF's (token_embd.weight, blk.{i}.attn_q.weight, ...); shapes are row-major,
// outermost dimension first, and a matrix W maps x -> W x with shape [out_features, in_features].
// Which tensors an architecture has, under which names and shapes: model/architecture.h.
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "io/ggml_type.h"
#include "model/model_config.h"

namespace deltainfer::io {
class GgufFile;
}

namespace deltainfer::model {

// A tensor in its storage type: shape as tensor_shape() gives it, data of ggml_nbytes(type, n) bytes.
struct RawTensor {
  io::GgmlType type;
  std::vector<int64_t> shape;
  const uint8_t* data;
};

class ModelSource {
 public:
  virtual ~ModelSource() = default;

  virtual const ModelConfig& config() const = 0;
  virtual const std::string& path() const = 0;
  virtual std::string format() const = 0;  // e.g. "GGUF v3", "safetensors"

  virtual bool has_tensor(const std::string& name) const = 0;
  // Throws InputError naming the file when the tensor is absent.
  virtual std::vector<int64_t> tensor_shape(const std::string& name) const = 0;
  // Dequantizes the whole tensor into dst (n must equal the element count, else InputError).
  virtual void read_f32(const std::string& name, float* dst, int64_t n) const = 0;
  // The tensor's bytes as stored (valid while the source lives) and their ggml type, for backends
  // that compute on quantized blocks directly; nullopt when the format has no such view (HF,
  // synthetic). Throws InputError like tensor_shape when the tensor is absent.
  virtual std::optional<RawTensor> raw_tensor(const std::string& name) const {
    (void)tensor_shape(name);
    return std::nullopt;
  }
  // Storage type name -> number of tensors of that type (for `inspect`), e.g. {"Q4_1": 211}.
  virtual std::map<std::string, int64_t> tensor_type_counts() const = 0;

  // The GGUF container when the source is one (the tokenizer reads its vocabulary from it).
  virtual const io::GgufFile* gguf() const { return nullptr; }

  // Synthetic models (`synthetic:<shape>`) have random weights and no tokenizer; a GPU backend
  // generates their weights on the device with synthetic_weight_value() instead of reading them.
  virtual bool is_synthetic() const { return false; }
};

// Every canonical tensor the config implies, with its expected shape: the rows of its
// architecture's table (model/architecture.h) that its flags leave in (the Qwen2 biases, the Qwen3
// q/k norms, the untied output matrix), for every layer.
std::vector<std::pair<std::string, std::vector<int64_t>>> expected_tensor_shapes(const ModelConfig& config);

// Opens `synthetic:llama3-8b`, `synthetic:qwen2.5-7b` or `synthetic:smollm2-135m`: the real
// model's shapes with deterministic random weights, for speed measurements without the weights.
std::unique_ptr<ModelSource> open_synthetic_model_source(const std::string& spec);
bool is_synthetic_spec(const std::string& path);

// Value of element `index` of the synthetic tensor `tensor_name`: a hash, so any device can
// produce any element independently. Norm gains are 1; matrices are uniform in ±scale.
float synthetic_weight_value(uint64_t tensor_seed, uint64_t index, float scale);
uint64_t synthetic_tensor_seed(const std::string& tensor_name);
float synthetic_tensor_scale(const std::string& tensor_name, int64_t fan_in);

// Opens a GGUF file or an HF directory (config.json + model.safetensors or a sharded index).
// Throws InputError naming the path and the problem: missing file, malformed container, unknown
// architecture, missing or mis-shaped tensor.
std::unique_ptr<ModelSource> open_model_source(const std::string& path);

}  // namespace deltainfer::model
