// ModelSource over one GGUF file: config from the <arch>.* metadata keys, tensors by their GGUF
// names (already canonical), shapes reversed from GGML's innermost-first order.
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "core/error.h"
#include "io/dequantize.h"
#include "io/gguf.h"
#include "model/architecture.h"
#include "model/model_source_impl.h"

namespace deltainfer::model {
namespace {

std::string file_stem(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
  const size_t dot = name.rfind(".gguf");
  return dot == std::string::npos ? name : name.substr(0, dot);
}

class GgufReader {
 public:
  GgufReader(const io::GgufFile& file, const ArchitectureTable& table) : file_(file), table_(table) {}

  int required_int(const char* suffix) const {
    const std::string key = table_.gguf_key(suffix);
    const std::optional<int64_t> value = file_.get_int(key);
    if (!value) throw_input_error("{}: missing metadata key '{}'", file_.path(), key);
    return checked_int(*value, file_.path(), key.c_str());
  }
  std::optional<int64_t> optional_int(const char* suffix) const { return file_.get_int(table_.gguf_key(suffix)); }
  float float_or(const char* suffix, float fallback) const {
    const std::optional<double> value = file_.get_float(table_.gguf_key(suffix));
    return value ? static_cast<float>(*value) : fallback;
  }
  std::optional<std::string> optional_string(const char* suffix) const {
    return file_.get_string(table_.gguf_key(suffix));
  }

 private:
  const io::GgufFile& file_;
  const ArchitectureTable& table_;
};

// Llama 3 frequency factor of one rotary pair, as llama.cpp's converter computes rope_freqs.weight.
float llama3_factor(float freq, const RopeScaling& s) {
  const double pi = 3.14159265358979323846;
  const double wavelen = 2 * pi / freq;
  const double low_wavelen = static_cast<double>(s.original_context) / s.low_freq_factor;
  const double high_wavelen = static_cast<double>(s.original_context) / s.high_freq_factor;
  if (wavelen < high_wavelen) return 1.0f;
  if (wavelen > low_wavelen) return s.factor;
  const double smooth = (static_cast<double>(s.original_context) / wavelen - s.low_freq_factor) /
                        (s.high_freq_factor - s.low_freq_factor);
  return static_cast<float>(1.0 / ((1 - smooth) / s.factor + smooth));
}

class GgufModelSource : public ModelSource {
 public:
  explicit GgufModelSource(const std::string& path) : file_(io::GgufFile::open(path)) {
    read_config();
    config_.validate(file_.path());
    if (const char* factors = architecture_table(config_.arch).gguf_rope_factors; factors && has_tensor(factors)) {
      read_rope_freqs(factors);  // needs a validated head_dim
      config_.validate(file_.path());
    }
    // Tensor types are not checked here: opening (and `inspect`) reads only the metadata and the
    // tensor table; a type that cannot be dequantized is refused when the tensor is read.
    check_tensor_shapes(*this);
  }

  const ModelConfig& config() const override { return config_; }
  const std::string& path() const override { return file_.path(); }
  std::string format() const override { return fmt::format("GGUF v{}", file_.version()); }
  const io::GgufFile* gguf() const override { return &file_; }

  bool has_tensor(const std::string& name) const override { return file_.find_tensor(name) != nullptr; }

  std::vector<int64_t> tensor_shape(const std::string& name) const override { return require(name).shape(); }

  void read_f32(const std::string& name, float* dst, int64_t n) const override {
    const io::GgufTensorInfo& tensor = require(name);
    if (n < 0 || static_cast<uint64_t>(n) != tensor.n_elements) {
      throw_input_error("{}: tensor '{}' has {} elements, caller expected {}", path(), name, tensor.n_elements, n);
    }
    if (!io::can_dequantize(tensor.type)) throw_unsupported_type(tensor);
    io::dequantize(tensor.type, file_.tensor_data(tensor), dst, n);
  }

  std::optional<RawTensor> raw_tensor(const std::string& name) const override {
    const io::GgufTensorInfo& tensor = require(name);
    return RawTensor{tensor.type, tensor.shape(), file_.tensor_data(tensor)};
  }

  std::map<std::string, int64_t> tensor_type_counts() const override {
    std::map<std::string, int64_t> counts;
    for (const io::GgufTensorInfo& tensor : file_.tensors()) ++counts[io::ggml_type_name(tensor.type)];
    return counts;
  }

 private:
  const io::GgufTensorInfo& require(const std::string& name) const {
    const io::GgufTensorInfo* tensor = file_.find_tensor(name);
    if (tensor == nullptr) throw_input_error("{}: missing tensor '{}'", path(), name);
    return *tensor;
  }

  [[noreturn]] void throw_unsupported_type(const io::GgufTensorInfo& tensor) const {
    throw_input_error("{}: tensor '{}' has type {}, which cannot be dequantized (supported: {})", path(), tensor.name,
                      io::ggml_type_name(tensor.type), io::dequantizable_type_names());
  }

  void read_config() {
    const std::optional<std::string> arch = file_.get_string("general.architecture");
    if (!arch) throw_input_error("{}: missing metadata key 'general.architecture'", path());
    const ArchitectureTable& table = architecture_named(*arch, path());
    config_.arch = table.id;
    const GgufReader meta(file_, table);
    config_.name = file_.get_string("general.name").value_or(file_stem(path()));
    config_.n_layers = meta.required_int("block_count");
    config_.d_model = meta.required_int("embedding_length");
    config_.ffn_dim = meta.required_int("feed_forward_length");
    config_.n_heads = meta.required_int("attention.head_count");
    config_.n_kv_heads = meta.optional_int("attention.head_count_kv") ? meta.required_int("attention.head_count_kv")
                                                                      : config_.n_heads;
    config_.head_dim = meta.optional_int("attention.key_length")
                           ? meta.required_int("attention.key_length")
                           : (config_.n_heads > 0 ? config_.d_model / config_.n_heads : 0);
    config_.context_length = meta.required_int("context_length");
    config_.rms_eps = meta.float_or("attention.layer_norm_rms_epsilon", 1e-5f);
    config_.rope_theta = meta.float_or("rope.freq_base", 10000.0f);
    config_.rope_style = table.gguf_rope_style;
    config_.vocab_size = read_vocab_size(meta);
    detect_flags(config_, [&](const ModelTensor& tensor) { return has_tensor(tensor.name); });
    read_rope_scaling(meta);
  }

  int read_vocab_size(const GgufReader& meta) const {
    if (const std::optional<uint64_t> n_tokens = file_.array_size("tokenizer.ggml.tokens")) {
      return checked_int(static_cast<int64_t>(std::min<uint64_t>(*n_tokens, INT64_MAX)), path(), "vocabulary size");
    }
    if (meta.optional_int("vocab_size")) return meta.required_int("vocab_size");
    const std::string embedding = model_tensor(config_, TensorRole::TokenEmbedding).name;
    if (const io::GgufTensorInfo* embd = file_.find_tensor(embedding); embd != nullptr && embd->dims.size() == 2) {
      return checked_int(embd->dims[1], path(), (embedding + " rows").c_str());
    }
    throw_input_error("{}: cannot tell the vocabulary size (no tokenizer.ggml.tokens, vocab_size or {})", path(),
                      embedding);
  }

  void read_rope_scaling(const GgufReader& meta) {
    const std::string type = meta.optional_string("rope.scaling.type").value_or("none");
    const float factor = meta.float_or("rope.scaling.factor", 1.0f);
    if (const std::optional<int64_t> original = meta.optional_int("rope.scaling.original_context_length")) {
      config_.rope_scaling.original_context = *original;
    }
    if (type == "llama3") {
      config_.rope_scaling.factor = factor;
    } else if (type != "none" && factor != 1.0f) {
      throw_input_error("{}: rope scaling type '{}' (factor {}) is not supported (supported: none, llama3)", path(),
                        type, factor);
    }
  }

  // llama.cpp stores Llama 3.1's frequency scaling as per-pair factors in rope_freqs.weight. We
  // recover the factor and accept the tensor only if the standard llama3 rule reproduces it.
  void read_rope_freqs(const char* name) {
    const io::GgufTensorInfo& tensor = require(name);
    const int64_t n_pairs = config_.head_dim / 2;
    if (tensor.dims.size() != 1 || tensor.dims[0] != n_pairs || tensor.type != io::GgmlType::F32) {
      throw_input_error("{}: {} must be F32 [{}] (head_dim / 2)", path(), name, n_pairs);
    }
    std::vector<float> factors(static_cast<size_t>(n_pairs));
    io::dequantize(tensor.type, file_.tensor_data(tensor), factors.data(), n_pairs);
    RopeScaling scaling = config_.rope_scaling;
    scaling.factor = *std::max_element(factors.begin(), factors.end());
    for (int64_t i = 0; i < n_pairs; ++i) {
      const auto freq = static_cast<float>(
          std::pow(static_cast<double>(config_.rope_theta), -2.0 * static_cast<double>(i) / config_.head_dim));
      const float expected = llama3_factor(freq, scaling);
      const float got = factors[static_cast<size_t>(i)];
      if (!(std::fabs(got - expected) <= 1e-3f * std::fabs(expected))) {
        throw_input_error("{}: {}[{}] = {} does not follow Llama 3 frequency scaling (expected {})", path(), name, i,
                          got, expected);
      }
    }
    config_.rope_scaling = scaling;
  }

  io::GgufFile file_;
  ModelConfig config_;
};

}  // namespace

std::unique_ptr<ModelSource> open_gguf_model_source(const std::string& path) {
  return std::make_unique<GgufModelSource>(path);
}

}  // namespace deltainfer::model
