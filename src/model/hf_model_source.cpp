// ModelSource over a Hugging Face directory: config.json for the config, safetensors (single or
// sharded) for the tensors, whose HF names the architecture's table maps to the canonical ones.
// GCC's -Wnull-dereference misfires on nlohmann's inlined iterators (a known false positive).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnull-dereference"
#include <nlohmann/json.hpp>
#pragma GCC diagnostic pop

#include <fstream>
#include <map>
#include <optional>

#include "core/error.h"
#include "io/safetensors.h"
#include "model/architecture.h"
#include "model/model_source_impl.h"

namespace deltainfer::model {
namespace {

using Json = nlohmann::json;

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
    for (const ModelTensor& tensor : model_tensors(config_)) hf_names_[tensor.name] = tensor.hf_name();
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
    const auto it = hf_names_.find(canonical);
    return it == hf_names_.end() ? nullptr : checkpoint_.find(it->second, file);
  }

  const io::SafetensorsTensor& require(const std::string& canonical, const io::SafetensorsFile** file = nullptr) const {
    const io::SafetensorsTensor* tensor = lookup(canonical, file);
    if (tensor == nullptr) {
      const auto it = hf_names_.find(canonical);
      throw_input_error("{}: missing tensor '{}' (HF name '{}')", dir_, canonical,
                        it == hf_names_.end() ? "?" : it->second);
    }
    return *tensor;
  }

  void read_config(const ConfigJson& cfg) {
    const Json& j = cfg.json();
    const std::string model_type = cfg.string_at(j, "model_type", "");
    if (model_type.empty()) throw_input_error("{}: missing 'model_type'", cfg.path());
    config_.arch = architecture_named(model_type, cfg.path()).id;
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
    detect_flags(config_, [&](const ModelTensor& tensor) { return checkpoint_.find(tensor.hf_name()) != nullptr; });
    // config.json says whether embeddings are tied: an untied model without lm_head.weight is refused
    // as a missing tensor instead of silently tied.
    config_.tied_embeddings = cfg.bool_at(j, "tie_word_embeddings", false);
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
  std::map<std::string, std::string> hf_names_;  // canonical -> HF name of every tensor the config implies
};

}  // namespace

std::unique_ptr<ModelSource> open_hf_model_source(const std::string& dir) { return std::make_unique<HfModelSource>(dir); }

}  // namespace deltainfer::model
