#include <cmath>
#include <map>

#include "core/error.h"
#include "model/model_source.h"
#include "model/model_source_impl.h"

namespace deltainfer::model {
namespace {

constexpr const char* kPrefix = "synthetic:";

ModelConfig llama3_8b() {
  ModelConfig c;
  c.arch = Architecture::Llama;
  c.name = "synthetic Llama-3.1-8B";
  c.n_layers = 32;
  c.d_model = 4096;
  c.n_heads = 32;
  c.n_kv_heads = 8;
  c.head_dim = 128;
  c.ffn_dim = 14336;
  c.vocab_size = 128256;
  c.context_length = 131072;
  c.rms_eps = 1e-5f;
  c.rope_theta = 500000.0f;
  c.rope_style = RopeStyle::HalfSplit;
  c.rope_scaling = {8.0f, 1.0f, 4.0f, 8192};
  return c;
}

ModelConfig qwen25_7b() {
  ModelConfig c;
  c.arch = Architecture::Qwen2;
  c.name = "synthetic Qwen2.5-7B";
  c.n_layers = 28;
  c.d_model = 3584;
  c.n_heads = 28;
  c.n_kv_heads = 4;
  c.head_dim = 128;
  c.ffn_dim = 18944;
  c.vocab_size = 152064;
  c.context_length = 131072;
  c.rms_eps = 1e-6f;
  c.rope_theta = 1000000.0f;
  c.rope_style = RopeStyle::HalfSplit;
  c.qkv_bias = true;
  return c;
}

ModelConfig smollm2_135m() {
  ModelConfig c;
  c.arch = Architecture::Llama;
  c.name = "synthetic SmolLM2-135M";
  c.n_layers = 30;
  c.d_model = 576;
  c.n_heads = 9;
  c.n_kv_heads = 3;
  c.head_dim = 64;
  c.ffn_dim = 1536;
  c.vocab_size = 49152;
  c.context_length = 8192;
  c.rms_eps = 1e-5f;
  c.rope_theta = 100000.0f;
  c.rope_style = RopeStyle::HalfSplit;
  c.tied_embeddings = true;
  return c;
}

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

class SyntheticModelSource final : public ModelSource {
 public:
  SyntheticModelSource(std::string spec, ModelConfig config) : spec_(std::move(spec)), config_(std::move(config)) {
    config_.validate(spec_);
    add_tensors();
  }

  const ModelConfig& config() const override { return config_; }
  const std::string& path() const override { return spec_; }
  std::string format() const override { return "synthetic (random weights)"; }
  bool is_synthetic() const override { return true; }
  bool has_tensor(const std::string& name) const override { return shapes_.count(name) > 0; }

  std::vector<int64_t> tensor_shape(const std::string& name) const override {
    const auto it = shapes_.find(name);
    if (it == shapes_.end()) throw_input_error("{}: no tensor '{}'", spec_, name);
    return it->second;
  }

  void read_f32(const std::string& name, float* dst, int64_t n) const override {
    const std::vector<int64_t> shape = tensor_shape(name);
    int64_t count = 1;
    for (int64_t dim : shape) count *= dim;
    if (count != n) throw_input_error("{}: tensor '{}' has {} elements, not {}", spec_, name, count, n);
    const uint64_t seed = synthetic_tensor_seed(name);
    const float scale = synthetic_tensor_scale(name, shape.back());
    for (int64_t i = 0; i < n; ++i) dst[i] = synthetic_weight_value(seed, static_cast<uint64_t>(i), scale);
  }

  std::map<std::string, int64_t> tensor_type_counts() const override {
    return {{"synthetic", static_cast<int64_t>(shapes_.size())}};
  }

 private:
  void add_tensors() {
    for (auto& [name, shape] : expected_tensor_shapes(config_)) shapes_[name] = std::move(shape);
  }

  std::string spec_;
  ModelConfig config_;
  std::map<std::string, std::vector<int64_t>> shapes_;
};

}  // namespace

bool is_synthetic_spec(const std::string& path) { return path.rfind(kPrefix, 0) == 0; }

uint64_t synthetic_tensor_seed(const std::string& tensor_name) {
  uint64_t hash = 1469598103934665603ull;  // FNV-1a
  for (unsigned char ch : tensor_name) hash = (hash ^ ch) * 1099511628211ull;
  return hash;
}

float synthetic_tensor_scale(const std::string& tensor_name, int64_t fan_in) {
  const bool is_norm = tensor_name.find("norm") != std::string::npos;
  if (is_norm) return 0.0f;  // gains are exactly 1
  // Uniform(±sqrt(3/fan_in)) keeps activations at unit scale through every matrix.
  return static_cast<float>(std::sqrt(3.0 / static_cast<double>(fan_in)));
}

float synthetic_weight_value(uint64_t tensor_seed, uint64_t index, float scale) {
  if (scale == 0.0f) return 1.0f;
  const uint64_t bits = splitmix64(tensor_seed ^ splitmix64(index));
  const double unit = static_cast<double>(bits >> 11) * (1.0 / 9007199254740992.0);  // [0, 1)
  return static_cast<float>((2.0 * unit - 1.0) * scale);
}

std::unique_ptr<ModelSource> open_synthetic_model_source(const std::string& spec) {
  const std::map<std::string, ModelConfig (*)()> shapes{
      {"llama3-8b", llama3_8b}, {"qwen2.5-7b", qwen25_7b}, {"smollm2-135m", smollm2_135m}};
  const std::string name = spec.substr(std::string(kPrefix).size());
  const auto it = shapes.find(name);
  if (it == shapes.end()) {
    throw_input_error("unknown synthetic model '{}' (known: synthetic:llama3-8b, synthetic:qwen2.5-7b, "
                      "synthetic:smollm2-135m)", spec);
  }
  return std::make_unique<SyntheticModelSource>(spec, it->second());
}

}  // namespace deltainfer::model
