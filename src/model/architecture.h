#pragma once
// One table per model architecture: its name (GGUF general.architecture, HF model_type and the
// GGUF metadata key prefix), how its GGUF files pair RoPE dimensions, and every tensor it has: the
// canonical (GGUF) and HF names, the shape as a function of the config, and the config flag that
// says whether the tensor is there. The loaders, expected_tensor_shapes, both backends' weight
// loading and both memory plans iterate these tables; nothing else spells a tensor name.
// The tables are in architecture_<name>.cpp.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "model/model_config.h"

namespace deltainfer::model {

// What a tensor is for: a backend maps each role to one of its weight slots.
enum class TensorRole {
  // once per model
  TokenEmbedding,
  OutputNorm,
  Output,
  // once per layer
  AttnNorm,
  AttnQ,
  AttnK,
  AttnV,
  AttnOutput,
  AttnQBias,
  AttnKBias,
  AttnVBias,
  AttnQNorm,
  AttnKNorm,
  FfnNorm,
  FfnGate,
  FfnUp,
  FfnDown,
};

// A dimension of a tensor shape, read from the config.
enum class Dim { Vocab, DModel, QDim, KvDim, HeadDim, Ffn };
int64_t dim_size(Dim dim, const ModelConfig& config);

struct TensorSpec {
  TensorRole role;
  const char* gguf_name;  // canonical name; for a layer tensor the part after "blk.{i}."
  const char* hf_name;    // safetensors name; for a layer tensor the part after "model.layers.{i}."
  std::vector<Dim> shape;  // row-major, outermost first; a matrix is [out, in]
  // The config flag that says whether the file has this tensor (nullptr: always there); with
  // present_if_flag false the tensor is there when the flag is off (the output matrix is absent
  // when embeddings are tied). A loader sets the flag from the file (detect_flags).
  bool ModelConfig::*flag = nullptr;
  bool present_if_flag = true;

  bool present(const ModelConfig& config) const { return flag == nullptr || config.*flag == present_if_flag; }
};

struct ArchitectureTable {
  Architecture id;
  const char* name;           // GGUF general.architecture and HF model_type; GGUF keys are "<name>.*"
  RopeStyle gguf_rope_style;  // llama.cpp's converter permutes the Q/K rows of Llama GGUF files only
  std::vector<TensorSpec> global_tensors;
  std::vector<TensorSpec> layer_tensors;
  // The GGUF tensor in which llama.cpp stores Llama 3.1's RoPE frequency factors (nullptr: none);
  // not a weight: the loader turns it into ModelConfig::rope_scaling.
  const char* gguf_rope_factors = nullptr;

  std::string gguf_key(const char* suffix) const { return std::string(name) + "." + suffix; }
};

// Every supported architecture, and the one of a config.
const std::vector<const ArchitectureTable*>& all_architectures();
const ArchitectureTable& architecture_table(Architecture arch);
// "llama" | "qwen2" | "qwen3" (GGUF general.architecture or HF model_type); anything else is an
// InputError naming `source` and the supported names.
const ArchitectureTable& architecture_named(const std::string& name, const std::string& source);

// One tensor of one model: a table row for a layer (layer -1: a global tensor).
struct ModelTensor {
  const TensorSpec* spec;
  int layer;
  std::string name;  // canonical
  std::vector<int64_t> shape;

  std::string hf_name() const;
};

// The tensors the config implies, in table order: the global ones, then each layer's.
std::vector<ModelTensor> global_tensors(const ModelConfig& config);
std::vector<ModelTensor> layer_tensors(const ModelConfig& config, int layer);
std::vector<ModelTensor> model_tensors(const ModelConfig& config);
// The tensor of `role` (in `layer` for a layer role); Error when the config has none (a table bug).
ModelTensor model_tensor(const ModelConfig& config, TensorRole role, int layer = -1);

// Sets every flag of the config's architecture from whether the file has the flag's first tensor
// (of layer 0 for a layer tensor); `has` answers for one tensor.
void detect_flags(ModelConfig& config, const std::function<bool(const ModelTensor&)>& has);

}  // namespace deltainfer::model
