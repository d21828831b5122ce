#include "eval/method_config.h"

#include <algorithm>
#include <charconv>
#include <optional>
#include <string>
#include <vector>

#include "attention/layer_schedule.h"
#include "attention/method_registry.h"
#include "core/error.h"

namespace deltainfer::eval {
namespace {

using attention::AttentionConfig;
using attention::DecodeKind;

int64_t parse_integer(const MethodSpec& spec, const std::string& key, const std::string& value) {
  int64_t number = 0;
  const auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), number);
  if (error != std::errc() || end != value.data() + value.size()) {
    throw_input_error("--methods: in '{}', {}={} is not an integer", spec.label, key, value);
  }
  return number;
}

// "512" or "25%" of the context.
int64_t parse_length(const MethodSpec& spec, const std::string& key, const std::string& value, int64_t context) {
  if (value.empty() || value.back() != '%') return parse_integer(spec, key, value);
  const int64_t percent = parse_integer(spec, key, value.substr(0, value.size() - 1));
  if (percent <= 0 || percent > 100) {
    throw_input_error("--methods: in '{}', {}={} must be a share in (0%, 100%]", spec.label, key, value);
  }
  return std::max<int64_t>(1, context * percent / 100);
}

DecodeKind parse_decode_kind(const MethodSpec& spec, const std::string& value) {
  if (const std::optional<DecodeKind> kind = attention::find_decode_method(value)) return *kind;
  throw_input_error("--methods: in '{}', decode={} is not one of {}", spec.label, value,
                    attention::decode_method_names());
}

attention::DeltaVariant parse_variant(const MethodSpec& spec, const std::string& value) {
  using attention::DeltaVariant;
  for (DeltaVariant v : {DeltaVariant::Delta, DeltaVariant::Recompute, DeltaVariant::Interpolate}) {
    if (value == attention::delta_variant_name(v)) return v;
  }
  throw_input_error("--methods: in '{}', variant={} is not one of delta, recompute, interpolate", spec.label, value);
}

// "2/8/15": the Δ-layers of DELTA / Tidal ('/' because ',' separates the keys).
std::vector<int> parse_layer_list(const MethodSpec& spec, const std::string& key, const std::string& value) {
  std::vector<int> layers;
  size_t begin = 0;
  while (true) {
    const size_t end = value.find('/', begin);
    layers.push_back(static_cast<int>(parse_integer(spec, key, value.substr(begin, end - begin))));
    if (end == std::string::npos) return layers;
    begin = end + 1;
  }
}

attention::HeadAggregation parse_aggregation(const MethodSpec& spec, const std::string& value) {
  if (value == "max") return attention::HeadAggregation::Max;
  if (value == "sum") return attention::HeadAggregation::Sum;
  throw_input_error("--methods: in '{}', aggregation={} is not max or sum", spec.label, value);
}

AttentionConfig base_config(const MethodSpec& spec) {
  AttentionConfig c;
  const std::string& n = spec.name;
  if (attention::parse_prefill_method(n, c.prefill)) return c;  // a prefill method, optionally +delta
  const std::optional<DecodeKind> decode = attention::find_decode_method(n);
  if (!decode) {
    throw_input_error("--methods: unknown method '{}' (known: a prefill method {} with an optional +delta, or a "
                      "decode method {})", n, attention::prefill_method_names("|"), attention::decode_method_names("|"));
  }
  c.decode.kind = *decode;
  c.prefill.kind = attention::decode_method(*decode).eval_prefill;  // StreamingLLM: sliding, the same sink and window
  return c;
}

// A share-of-context budget rounds to whole pages, at least one.
int64_t page_rounded(int64_t budget, int64_t page) { return std::max(page, (budget + page / 2) / page * page); }

void apply_param(AttentionConfig& c, const MethodSpec& spec, const std::string& key, const std::string& value,
                 int64_t context) {
  auto integer = [&] { return parse_integer(spec, key, value); };
  if (key == "window") c.window = parse_length(spec, key, value, context);
  else if (key == "sink") c.sink = integer();
  else if (key == "gamma") c.prefill.gamma = integer();
  else if (key == "dense_tail") c.prefill.dense_tail = integer();
  else if (key == "variant") c.prefill.variant = parse_variant(spec, value);
  else if (key == "vertical") c.prefill.vertical = parse_length(spec, key, value, context);
  else if (key == "slash") c.prefill.slash = parse_length(spec, key, value, context);
  else if (key == "block") c.prefill.block = integer();
  else if (key == "estimate_queries") c.prefill.estimate_queries = integer();
  else if (key == "budget") c.decode.budget = parse_length(spec, key, value, context);
  else if (key == "recency") c.decode.recency = integer();
  else if (key == "page") c.decode.page = integer();
  else if (key == "full_layers") c.decode.full_layers = static_cast<int>(integer());
  else if (key == "aggregation") c.decode.aggregation = parse_aggregation(spec, value);
  else if (key == "delta_layers") c.decode.delta_layers = parse_layer_list(spec, key, value);
  else if (key == "decode") c.decode.kind = parse_decode_kind(spec, value);
  else throw_input_error("--methods: in '{}', unknown parameter '{}'", spec.label, key);
}

double causal_pairs(int64_t n) { return 0.5 * static_cast<double>(n) * static_cast<double>(n + 1); }

// Σ_i min(i + 1, keep) over rows i < n.
double capped_pairs(int64_t n, int64_t keep) {
  const int64_t full_rows = std::min(n, keep);
  return causal_pairs(full_rows) + static_cast<double>(n - full_rows) * static_cast<double>(keep);
}

double prefill_share(const AttentionConfig& c, int64_t n) {
  const std::optional<int64_t> keep = attention::prefill_method(c.prefill.kind).kept_keys(c);
  if (!keep) return 1.0;
  double pairs = capped_pairs(n, *keep);
  if (c.prefill.delta) {
    for (int64_t r = 0; r < n; r += c.prefill.gamma) pairs += static_cast<double>(r + 1);
    for (int64_t r = std::max<int64_t>(0, n - c.prefill.dense_tail); r < n; ++r) pairs += static_cast<double>(r + 1);
  }
  return std::min(pairs / causal_pairs(n), c.prefill.delta ? 2.0 : 1.0);
}

double decode_share(const AttentionConfig& c, int64_t n, int n_layers) {
  if (n_layers <= 0) return 1.0;
  const attention::LayerSchedule schedule(c.decode, n_layers);
  const int64_t context = n + 1;  // the first decode token attends to the prompt and itself
  const int64_t sparse = attention::decode_method(c.decode.kind).sparse_tokens(c);
  double attended = 0.0;
  for (int layer = 0; layer < n_layers; ++layer) {
    const bool dense = schedule.role(layer) != attention::LayerRole::Sparse;
    attended += static_cast<double>(dense ? context : std::min(context, sparse));
  }
  return attended / (static_cast<double>(context) * n_layers);
}

}  // namespace

AttentionConfig method_config(const MethodSpec& spec, int64_t context_tokens) {
  AttentionConfig c = base_config(spec);
  bool budget_is_share = false;
  for (const auto& [key, value] : spec.params) {
    apply_param(c, spec, key, value, context_tokens);
    budget_is_share |= key == "budget" && !value.empty() && value.back() == '%';
  }
  if (budget_is_share) c.decode.budget = page_rounded(c.decode.budget, c.decode.page);
  try {
    c.validate();
  } catch (const InputError& e) {
    throw_input_error("--methods: '{}' at {} tokens: {}", spec.label, context_tokens, e.what());
  }
  return c;
}

AttendedShare attended_share(const AttentionConfig& config, int64_t context_tokens, int n_layers) {
  if (context_tokens <= 0) return {};
  return {prefill_share(config, context_tokens), decode_share(config, context_tokens, n_layers)};
}

}  // namespace deltainfer::eval
