#include "model/architecture.h"

#include <fmt/format.h>

#include <algorithm>
#include <string_view>

#include "core/error.h"
#include "model/architecture_tables.h"

namespace deltainfer::model {
namespace {

constexpr std::string_view kGgufLayerPrefix = "blk.";
constexpr std::string_view kHfLayerPrefix = "model.layers.";

ModelTensor instantiate(const TensorSpec& spec, int layer, const ModelConfig& config) {
  ModelTensor tensor{&spec, layer, spec.gguf_name, {}};
  if (layer >= 0) tensor.name = fmt::format("{}{}.{}", kGgufLayerPrefix, layer, spec.gguf_name);
  for (Dim dim : spec.shape) tensor.shape.push_back(dim_size(dim, config));
  return tensor;
}

void append_present(std::vector<ModelTensor>& out, const std::vector<TensorSpec>& specs, int layer,
                    const ModelConfig& config) {
  for (const TensorSpec& spec : specs) {
    if (spec.present(config)) out.push_back(instantiate(spec, layer, config));
  }
}

}  // namespace

int64_t dim_size(Dim dim, const ModelConfig& c) {
  switch (dim) {
    case Dim::Vocab: return c.vocab_size;
    case Dim::DModel: return c.d_model;
    case Dim::QDim: return c.q_dim();
    case Dim::KvDim: return c.kv_dim();
    case Dim::HeadDim: return c.head_dim;
    case Dim::Ffn: return c.ffn_dim;
  }
  throw_error("unknown tensor dimension {}", static_cast<int>(dim));
}

const std::vector<const ArchitectureTable*>& all_architectures() {
  static const std::vector<const ArchitectureTable*> tables = {&llama_architecture(), &qwen2_architecture(),
                                                               &qwen3_architecture()};
  return tables;
}

const ArchitectureTable& architecture_table(Architecture arch) {
  for (const ArchitectureTable* table : all_architectures()) {
    if (table->id == arch) return *table;
  }
  throw_error("architecture {} has no table", static_cast<int>(arch));
}

const ArchitectureTable& architecture_named(const std::string& name, const std::string& source) {
  std::vector<std::string> names;
  for (const ArchitectureTable* table : all_architectures()) {
    if (name == table->name) return *table;
    names.emplace_back(table->name);
  }
  throw_input_error("{}: unsupported architecture '{}' (supported: {})", source, name, fmt::join(names, ", "));
}

std::string ModelTensor::hf_name() const {
  return layer < 0 ? std::string(spec->hf_name) : fmt::format("{}{}.{}", kHfLayerPrefix, layer, spec->hf_name);
}

std::vector<ModelTensor> global_tensors(const ModelConfig& config) {
  std::vector<ModelTensor> tensors;
  append_present(tensors, architecture_table(config.arch).global_tensors, -1, config);
  return tensors;
}

std::vector<ModelTensor> layer_tensors(const ModelConfig& config, int layer) {
  std::vector<ModelTensor> tensors;
  append_present(tensors, architecture_table(config.arch).layer_tensors, layer, config);
  return tensors;
}

std::vector<ModelTensor> model_tensors(const ModelConfig& config) {
  std::vector<ModelTensor> tensors = global_tensors(config);
  for (int i = 0; i < config.n_layers; ++i) {
    std::vector<ModelTensor> layer = layer_tensors(config, i);
    tensors.insert(tensors.end(), layer.begin(), layer.end());
  }
  return tensors;
}

ModelTensor model_tensor(const ModelConfig& config, TensorRole role, int layer) {
  for (ModelTensor& tensor : layer < 0 ? global_tensors(config) : layer_tensors(config, layer)) {
    if (tensor.spec->role == role) return tensor;
  }
  throw_error("{}: the {} table has no tensor of role {} (layer {}) under this config", config.name,
              architecture_table(config.arch).name, static_cast<int>(role), layer);
}

void detect_flags(ModelConfig& config, const std::function<bool(const ModelTensor&)>& has) {
  std::vector<bool ModelConfig::*> decided;
  auto detect = [&](const std::vector<TensorSpec>& specs, int layer) {
    for (const TensorSpec& spec : specs) {
      if (spec.flag == nullptr || std::find(decided.begin(), decided.end(), spec.flag) != decided.end()) continue;
      config.*spec.flag = has(instantiate(spec, layer, config)) == spec.present_if_flag;
      decided.push_back(spec.flag);
    }
  };
  const ArchitectureTable& table = architecture_table(config.arch);
  detect(table.global_tensors, -1);
  detect(table.layer_tensors, 0);
}

}  // namespace deltainfer::model
