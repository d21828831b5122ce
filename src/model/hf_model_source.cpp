// ModelSource over a Hugging Face directory: config.json for the config, safetensors (single or
// sharded) for the tensors, whose HF names are mapped to the canonical GGUF-style names.
// GCC's -Wnull-dereference misfires on nlohmann's inlined iterators (a known false positive).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnull-dereference"
#include <nlohmann/json.hpp>
#pragma GCC diagnostic pop

#include <fstream>
#include <optional>

#include "core/error.h"
#include "io/safetensors.h"
#include "model/model_source_impl.h"

namespace deltainfer::model {
namespace {

using Json = nlohmann::json;

// blk.{i}.<suffix> -> model.layers.{i}.<HF suffix>
const std::map<std::string, std::string>& layer_names() {
  static const std::map<std::string, std::string> names = {
      {"attn_norm.weight", "input_layernorm.weight"},
      {"ffn_norm.weight", "post_attention_layernorm.weight"},
      {"attn_q.weight", "self_attn.q_proj.weight"},
      {"attn_k.weight", "self_attn.k_proj.weight"},
      {"attn_v.weight", "self_attn.v_proj.weight"},
      {"attn_q.bias", "self_attn.q_proj.bias"},
      {"attn_k.bias", "self_attn.k_proj.bias"},
      {"attn_v.bias", "self_attn.v_proj.bias"},
      {"attn_output.weight", "self_attn.o_proj.weight"},
      {"attn_q_norm.weight", "self_attn.q_norm.weight"},
      {"attn_k_norm.weight", "self_attn.k_norm.weight"},
      {"ffn_gate.weight", "mlp.gate_proj.weight"},
      {"ffn_up.weight", "mlp.up_proj.weight"},
      {"ffn_down.weight", "mlp.down_proj.weight"},
  };
  return names;
}

// The HF name of a canonical tensor name, or "" when there is none.
std::string hf_tensor_name(const std::string& canonical) {
  if (canonical == "token_embd.weight") return "model.embed_tokens.weight";
  if (canonical == "output_norm.weight") return "model.norm.weight";
  if (canonical == "output.weight") return "lm_head.weight";
  if (canonical.rfind("blk.", 0) != 0) return "";
  const size_t dot = canonical.find('.', 4);
  if (dot == std::string::npos || dot == 4) return "";
  const std::string layer = canonical.substr(4, dot - 4);
  if (layer.find_first_not_of("0123456789") != std::string::npos) return "";
  const auto it = layer_names().find(canonical.substr(dot + 1));
  if (it == layer_names().end()) return "";
  return "model.layers." + layer + "." + it->second;
}

class ConfigJson {
 public:
  explicit ConfigJson(std::string path) : path_(std::move(path)) {
    std::ifstream in(path_);
    if (!in) throw_input_error("{}: cannot open (an HF model directory needs config.json)", path_);
    json_ = Json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (json_.is_discarded() || !json_.is_object()) throw_input_error("{}: not a valid JSON object", path_);
  }

  const std::string& path() const { return path_; }
  const Json& json() const { return json_; }

  const Json* find(const Json& object, const char* key) const {
    const auto it = object.find(key);
    return it == object.end() || it->is_null() ? nullptr : &*it;
  }
  int64_t int_at(const Json& object, const char* key, std::optional<int64_t> fallback = std::nullopt) const {
    const Json* value = find(object, key);
    if (value == nullptr) {
      if (fallback) return *fallback;
      throw_input_error("{}: missing '{}'", path_, key);
    }
    if (!value->is_number_integer()) throw_input_error("{}: '{}' must be an integer (got {})", path_, key, value->dump());
    if (value->is_number_unsigned() && value->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
      throw_input_error("{}: '{}' is out of range", path_, key);
    }
    return value->get<int64_t>();
  }
  int int_field(const char* key, std::optional<int64_t> fallback = std::nullopt) const {
    return checked_int(int_at(json_, key, fallback), path_, key);
  }
  double number_at(const Json& object, const char* key, double fallback) const {
    const Json* value = find(object, key);
    if (value == nullptr) return fallback;
    if (!value->is_number()) throw_input_error("{}: '{}' must be a number (got {})", path_, key, value->dump());
    return value->get<double>();
  }
  std::string string_at(const Json& object, const char* key, const std::string& fallback) const {
    const Json* value = find(object, key);
    if (value == nullptr) return fallback;
    if (!value->is_string()) throw_input_error("{}: '{}' must be a string (got {})", path_, key, value->dump());
    return value->get<std::string>();
  }
  bool bool_at(const Json& object, const char* key, bool fallback) const {
    const Json* value = find(object, key);
    if (value == nullptr) return fallback;
    if (!value->is_boolean()) throw_input_error("{}: '{}' must be true or false (got {})", path_, key, value->dump());
    return value->get<bool>();
  }

 private:
  std::string path_;
  Json json_;
};

class HfModelSource : public ModelSource {
 public:
  explicit HfModelSource(const std::string& dir)
      : dir_(dir), checkpoint_(io::SafetensorsCheckpoint::open_dir(dir)) {
    read_config(ConfigJson(io::checkpoint_file(dir, "config.json")));
    config_.validate(dir_);
    check_tensor_shapes(*this);
    check_tensor_dtypes();
  }

  const ModelConfig& config() const override { return config_; }
  const std::string& path() const override { return dir_; }
  std::string format() const override {
    return checkpoint_.files().size() == 1 ? "safetensors" : fmt::format("safetensors ({} shards)", checkpoint_.files().size());
  }

  bool has_tensor(const std::string& name) const override { return lookup(name) != nullptr; }

  std::vector<int64_t> tensor_shape(const std::string& name) const override { return require(name).shape; }

  void read_f32(const std::string& name, float* dst, int64_t n) const override {
    const io::SafetensorsFile* file = nullptr;
    const io::SafetensorsTensor& tensor = require(name, &file);
    file->read_f32(tensor, dst, n);
  }

  std::map<std::string, int64_t> tensor_type_counts() const override {
    std::map<std::string, int64_t> counts;
    for (const io::SafetensorsFile& file : checkpoint_.files()) {
      for (const io::SafetensorsTensor& tensor : file.tensors()) ++counts[tensor.dtype];
    }
    return counts;
  }

 private:
  const io::SafetensorsTensor* lookup(const std::string& canonical, const io::SafetensorsFile** file = nullptr) const {
    if (canonical == "output.weight" && config_.tied_embeddings) return nullptr;
    const std::string hf_name = hf_tensor_name(canonical);
    return hf_name.empty() ? nullptr : checkpoint_.find(hf_name, file);
  }

  const io::SafetensorsTensor& require(const std::string& canonical, const io::SafetensorsFile** file = nullptr) const {
    const io::SafetensorsTensor* tensor = lookup(canonical, file);
    if (tensor == nullptr) {
      const std::string hf_name = hf_tensor_name(canonical);
      throw_input_error("{}: missing tensor '{}' (HF name '{}')", dir_, canonical, hf_name.empty() ? "?" : hf_name);
    }
    return *tensor;
  }

  void read_config(const ConfigJson& cfg) {
    const Json& j = cfg.json();
    const std::string model_type = cfg.string_at(j, "model_type", "");
    if (model_type.empty()) throw_input_error("{}: missing 'model_type'", cfg.path());
    config_.arch = parse_architecture(model_type, cfg.path());
    const size_t slash = dir_.find_last_of('/', dir_.size() > 1 ? dir_.size() - 2 : 0);
    config_.name = slash == std::string::npos ? dir_ : dir_.substr(slash + 1);
    config_.d_model = cfg.int_field("hidden_size");
    config_.ffn_dim = cfg.int_field("intermediate_size");
    config_.n_layers = cfg.int_field("num_hidden_layers");
    config_.n_heads = cfg.int_field("num_attention_heads");
    config_.n_kv_heads = cfg.int_field("num_key_value_heads", config_.n_heads);
    config_.head_dim = cfg.int_field("head_dim", config_.n_heads > 0 ? config_.d_model / config_.n_heads : 0);
    config_.vocab_size = cfg.int_field("vocab_size");
    config_.context_length = cfg.int_at(j, "max_position_embeddings");
    config_.rms_eps = static_cast<float>(cfg.number_at(j, "rms_norm_eps", 1e-6));
    config_.rope_style = RopeStyle::HalfSplit;  // HF checkpoints keep q/k rows unpermuted
    config_.tied_embeddings = cfg.bool_at(j, "tie_word_embeddings", false);
    config_.qkv_bias = checkpoint_.find("model.layers.0.self_attn.q_proj.bias") != nullptr;
    config_.qk_norm = checkpoint_.find("model.layers.0.self_attn.q_norm.weight") != nullptr;
    read_rope(cfg);
  }

  // rope_theta and rope_scaling at the top level, or (newer transformers) inside rope_parameters.
  void read_rope(const ConfigJson& cfg) {
    const Json& j = cfg.json();
    const Json* parameters = cfg.find(j, "rope_parameters");
    const Json* scaling = cfg.find(j, "rope_scaling");
    if (scaling == nullptr) scaling = parameters;
    if (parameters != nullptr && !parameters->is_object()) throw_input_error("{}: 'rope_parameters' must be an object", cfg.path());
    config_.rope_theta = static_cast<float>(
        cfg.number_at(j, "rope_theta", parameters != nullptr ? cfg.number_at(*parameters, "rope_theta", 10000.0) : 10000.0));
    if (scaling == nullptr) return;
    if (!scaling->is_object()) throw_input_error("{}: 'rope_scaling' must be an object or null", cfg.path());
    const std::string type = cfg.string_at(*scaling, "rope_type", cfg.string_at(*scaling, "type", "default"));
    if (type == "default") return;
    if (type != "llama3") {
      throw_input_error("{}: rope scaling type '{}' is not supported (supported: default, llama3)", cfg.path(), type);
    }
    RopeScaling& s = config_.rope_scaling;
    s.factor = static_cast<float>(cfg.number_at(*scaling, "factor", 1.0));
    s.low_freq_factor = static_cast<float>(cfg.number_at(*scaling, "low_freq_factor", 1.0));
    s.high_freq_factor = static_cast<float>(cfg.number_at(*scaling, "high_freq_factor", 4.0));
    s.original_context = cfg.int_at(*scaling, "original_max_position_embeddings", int64_t{8192});
    if (!(s.high_freq_factor > s.low_freq_factor) || s.original_context <= 0) {
      throw_input_error("{}: llama3 rope scaling needs high_freq_factor > low_freq_factor and a positive "
                        "original_max_position_embeddings", cfg.path());
    }
  }

  void check_tensor_dtypes() const {
    for (const auto& entry : expected_tensor_shapes(config_)) {
      const io::SafetensorsTensor& tensor = require(entry.first);
      if (tensor.dtype != "F32" && tensor.dtype != "F16" && tensor.dtype != "BF16") {
        throw_input_error("{}: tensor '{}' has dtype {} (supported: F32, F16, BF16)", dir_, tensor.name, tensor.dtype);
      }
    }
  }

  std::string dir_;
  io::SafetensorsCheckpoint checkpoint_;
  ModelConfig config_;
};

}  // namespace

std::unique_ptr<ModelSource> open_hf_model_source(const std::string& dir) { return std::make_unique<HfModelSource>(dir); }

}  // namespace deltainfer::model
