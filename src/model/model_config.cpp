#include "model/model_config.h"

#include "core/error.h"
#include "model/architecture.h"

namespace deltainfer::model {

const char* architecture_name(Architecture arch) { return architecture_table(arch).name; }

void ModelConfig::validate(const std::string& source) const {
  auto require_positive = [&](int64_t value, const char* field) {
    if (value <= 0) throw_input_error("{}: model config field '{}' must be positive (got {})", source, field, value);
  };
  require_positive(n_layers, "n_layers");
  require_positive(d_model, "d_model");
  require_positive(n_heads, "n_heads");
  require_positive(n_kv_heads, "n_kv_heads");
  require_positive(head_dim, "head_dim");
  require_positive(ffn_dim, "ffn_dim");
  require_positive(vocab_size, "vocab_size");
  require_positive(context_length, "context_length");
  if (n_heads % n_kv_heads != 0) {
    throw_input_error("{}: n_heads ({}) is not a multiple of n_kv_heads ({})", source, n_heads, n_kv_heads);
  }
  if (head_dim % 2 != 0) throw_input_error("{}: head_dim ({}) must be even for RoPE", source, head_dim);
  if (!(rms_eps > 0.0f)) throw_input_error("{}: rms_eps must be positive", source);
  if (!(rope_theta > 0.0f)) throw_input_error("{}: rope_theta must be positive", source);
  if (!(rope_scaling.factor >= 1.0f)) throw_input_error("{}: rope scaling factor must be >= 1", source);
  if (n_layers > 1024 || n_heads > 1024 || head_dim > 1024 || d_model > (1 << 20) || ffn_dim > (1 << 22) ||
      vocab_size > (1 << 24)) {
    throw_input_error("{}: model config has implausible sizes (layers {}, heads {}, head_dim {}, d_model {})",
                      source, n_layers, n_heads, head_dim, d_model);
  }
}

}  // namespace deltainfer::model
