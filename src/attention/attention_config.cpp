#include "attention/attention_config.h"

#include "attention/method_registry.h"

#include <fmt/format.h>

#include <algorithm>

#include "core/error.h"

namespace deltainfer::attention {
namespace {

void require_at_least(int64_t value, int64_t minimum, const char* flag) {
  if (value < minimum) throw_input_error("{} must be >= {} (got {})", flag, minimum, value);
}

void validate_prefill(const PrefillConfig& p) {
  require_at_least(p.gamma, 1, "--gamma");
  require_at_least(p.dense_tail, 0, "--dense-tail");
  require_at_least(p.estimate_queries, 1, "--estimate-queries");
  require_at_least(p.block, 1, "--block");
  require_at_least(p.vertical, 0, "--vertical");
  require_at_least(p.slash, 0, "--slash");
}

// Δ corrects what a sparse prefill leaves out: a method that keeps every key has nothing to correct.
void require_sparse_under_delta(const AttentionConfig& c) {
  if (!c.prefill.delta || prefill_method(c.prefill.kind).kept_keys(c)) return;
  std::string sparse;
  for (const PrefillMethodInfo& method : prefill_methods()) {
    if (!method.kept_keys(c)) continue;
    if (!sparse.empty()) sparse += " or ";
    sparse += method.name;
  }
  throw_input_error("--prefill {}+delta: Δ correction needs a sparse prefill ({})", prefill_kind_name(c.prefill.kind),
                    sparse);
}

void validate_decode(const DecodeConfig& d) {
  require_at_least(d.page, 1, "--page");
  require_at_least(d.budget, 1, "--budget");
  require_at_least(d.recency, 0, "--recency");
  require_at_least(d.full_layers, 0, "--full-layers");
}

void validate_layers(const DecodeConfig& d, int n_layers) {
  if (d.full_layers > n_layers) {
    throw_input_error("--full-layers {} exceeds the model's {} layers", d.full_layers, n_layers);
  }
  for (int layer : d.delta_layers) {
    if (layer < d.full_layers || layer >= n_layers) {
      throw_input_error("--delta-layers: layer {} must lie in [--full-layers {}, {}) for this model", layer,
                        d.full_layers, n_layers);
    }
  }
}

}  // namespace

void AttentionConfig::validate(int n_layers) const {
  require_at_least(window, 1, "--window");
  require_at_least(sink, 0, "--sink");
  validate_prefill(prefill);
  require_sparse_under_delta(*this);
  validate_decode(decode);
  decode_method(decode.kind).validate(*this);
  if (n_layers > 0) validate_layers(decode, n_layers);
}

bool parse_prefill_method(std::string_view text, PrefillConfig& prefill) {
  bool delta = false;
  for (const std::string_view suffix : {std::string_view("+delta"), std::string_view("+Δ")}) {
    if (text.size() > suffix.size() && text.substr(text.size() - suffix.size()) == suffix) {
      text.remove_suffix(suffix.size());
      delta = true;
      break;
    }
  }
  const std::optional<PrefillKind> kind = find_prefill_method(text);
  if (!kind) return false;
  prefill.kind = *kind;
  prefill.delta = delta;
  return true;
}

std::vector<int> resolved_delta_layers(const DecodeConfig& decode, int n_layers) {
  std::vector<int> layers = decode.delta_layers;
  if (layers.empty()) {
    for (int layer : {decode.full_layers, n_layers / 2}) {
      if (layer >= decode.full_layers && layer < n_layers) layers.push_back(layer);
    }
  }
  std::sort(layers.begin(), layers.end());
  layers.erase(std::unique(layers.begin(), layers.end()), layers.end());
  return layers;
}

bool is_dense(const AttentionConfig& config) {
  return config.prefill.kind == PrefillKind::Dense && !config.prefill.delta &&
         config.decode.kind == DecodeKind::Dense;
}

const char* prefill_kind_name(PrefillKind kind) { return prefill_method(kind).name; }

const char* delta_variant_name(DeltaVariant variant) {
  switch (variant) {
    case DeltaVariant::Delta: return "delta";
    case DeltaVariant::Recompute: return "recompute";
    case DeltaVariant::Interpolate: return "interpolate";
  }
  return "unknown";
}

const char* decode_kind_name(DecodeKind kind) { return decode_method(kind).name; }

const char* head_aggregation_name(HeadAggregation aggregation) {
  return aggregation == HeadAggregation::Max ? "max" : "sum";
}

std::string describe(const AttentionConfig& c) {
  const PrefillConfig& p = c.prefill;
  std::string prefill = fmt::format("prefill {}", prefill_kind_name(p.kind));
  if (p.delta) {
    prefill += fmt::format("+delta(γ={}, {}, dense tail {})", p.gamma, delta_variant_name(p.variant), p.dense_tail);
  }
  prefill += prefill_method(p.kind).describe(c);
  const DecodeMethodInfo& method = decode_method(c.decode.kind);
  const std::string decode = fmt::format("decode {}", method.name) + method.describe(c);
  return prefill + " | " + decode;
}

}  // namespace deltainfer::attention
