#include "attention_options.h"

#include <fstream>
#include <map>
#include <optional>

#include "attention/method_registry.h"
#include "core/error.h"

namespace deltainfer::cli {
namespace {

using attention::DecodeKind;
using attention::DeltaVariant;
using attention::HeadAggregation;

std::string prefill_forms() {
  return "expected one of " + attention::prefill_method_names() + ", optionally followed by +delta";
}

void add_prefill_options(CLI::App& command, AttentionOptions& o) {
  attention::PrefillConfig& p = o.config.prefill;
  o.prefill_flag = command.add_option("--prefill", o.prefill, "Prefill attention (`deltainfer methods` lists them), +delta for Δ")
      ->capture_default_str()
      ->option_text(attention::prefill_method_names("|") + "[+delta]")
      ->check([](const std::string& text) {
        attention::PrefillConfig unused;
        return attention::parse_prefill_method(text, unused) ? std::string() : prefill_forms();
      });
  o.window_flag = command.add_option("--window", o.config.window, "Sliding window of sliding prefill / streaming decode (tokens)")
      ->capture_default_str();
  o.sink_flag = command.add_option("--sink", o.config.sink, "First tokens always attended by sliding / streaming")->capture_default_str();
  o.gamma_flag = command.add_option("--gamma", p.gamma, "Δ correction: stride of the dense query rows")->capture_default_str();
  command.add_option("--dense-tail", p.dense_tail, "Δ correction: last prompt rows that attend densely (0: none)")
      ->capture_default_str();
  const std::map<std::string, DeltaVariant> variants{
      {"delta", DeltaVariant::Delta}, {"recompute", DeltaVariant::Recompute}, {"interpolate", DeltaVariant::Interpolate}};
  command.add_option("--delta-variant", p.variant, "Δ correction variant: delta, recompute or interpolate (ablations)")
      ->transform(CLI::CheckedTransformer(variants, CLI::ignore_case))
      ->option_text("delta|recompute|interpolate");
  command.add_option("--estimate-queries", p.estimate_queries, "vslash: last queries of a chunk used to estimate")
      ->capture_default_str();
  command.add_option("--vertical", p.vertical, "vslash: key columns kept per head")->capture_default_str();
  command.add_option("--slash", p.slash, "vslash: diagonals kept per head")->capture_default_str();
  command.add_option("--block", p.block, "vslash: key block (query blocks are 128 rows; CUDA needs 64)")->capture_default_str();
}

void add_decode_options(CLI::App& command, AttentionOptions& o) {
  attention::DecodeConfig& d = o.config.decode;
  std::map<std::string, DecodeKind> kinds;
  for (const attention::DecodeMethodInfo& method : attention::decode_methods()) kinds[method.name] = method.kind;
  command.add_option("--decode", d.kind, "Decode attention (`deltainfer methods` lists them)")
      ->transform(CLI::CheckedTransformer(kinds, CLI::ignore_case))
      ->option_text(attention::decode_method_names("|"));
  command.add_option("--budget", d.budget, "delta / tidal / quest: tokens attended by sparse layers")
      ->capture_default_str();
  command.add_option("--recency", d.recency, "delta: most recent tokens always kept")->capture_default_str();
  command.add_option("--page", d.page, "delta / tidal / quest: selection page (tokens)")->capture_default_str();
  command.add_option("--full-layers", d.full_layers, "delta / tidal / quest: first layers attending densely")
      ->capture_default_str();
  command.add_option("--delta-layers", d.delta_layers, "delta / tidal: selecting layers, e.g. 2,14 (default: F and L/2)")
      ->delimiter(',');
  const std::map<std::string, HeadAggregation> aggregations{{"max", HeadAggregation::Max},
                                                            {"sum", HeadAggregation::Sum}};
  command.add_option("--head-aggregation", d.aggregation, "delta / tidal: token score over heads, max or sum")
      ->transform(CLI::CheckedTransformer(aggregations, CLI::ignore_case))
      ->option_text("max|sum");
}

// Sliding+Δ settings by name (docs/METHODS.md section 1): ours (sink 64) and the authors' window
// mode (sink 1024, their `--delta-lambda 64` with window 2048). Flags given explicitly win.
struct DeltaPreset {
  const char* name;
  int64_t window;
  int64_t sink;
  int64_t gamma;
};
constexpr DeltaPreset kDeltaPresets[] = {{"ours", 2048, 64, 64}, {"authors", 2048, 1024, 64}};

void apply_delta_preset(const AttentionOptions& o, std::string& prefill, attention::AttentionConfig& config) {
  if (o.delta_preset.empty()) return;
  for (const DeltaPreset& preset : kDeltaPresets) {
    if (o.delta_preset != preset.name) continue;
    if (o.prefill_flag == nullptr || o.prefill_flag->count() == 0) prefill = "sliding+delta";
    if (o.window_flag == nullptr || o.window_flag->count() == 0) config.window = preset.window;
    if (o.sink_flag == nullptr || o.sink_flag->count() == 0) config.sink = preset.sink;
    if (o.gamma_flag == nullptr || o.gamma_flag->count() == 0) config.prefill.gamma = preset.gamma;
    return;
  }
  throw_input_error("--delta-preset {}: expected ours (window 2048, sink 64, γ 64) or authors (sink 1024)",
                    o.delta_preset);
}

}  // namespace

void AttentionOptions::add_to(CLI::App& command) {
  add_prefill_options(command, *this);
  add_decode_options(command, *this);
  command.add_option("--delta-preset", delta_preset,
                     "sliding+delta with named settings: ours (window 2048, sink 64, γ 64) or authors (window 2048, "
                     "sink 1024, γ 64, their window mode); --prefill/--window/--sink/--gamma given explicitly win");
  command.add_option("--fidelity", fidelity_path,
                     "Write per-layer attention fidelity (attended tokens, cosine and recall vs dense) as JSON; "
                     "--backend cuda: prefill only (dense and sliding, +delta), decode entries left empty");
}

attention::AttentionConfig AttentionOptions::to_config() const {
  attention::AttentionConfig result = config;
  std::string method = prefill;
  apply_delta_preset(*this, method, result);
  if (!attention::parse_prefill_method(method, result.prefill)) {
    throw_input_error("--prefill {}: {}", method, prefill_forms());
  }
  result.instrument = !fidelity_path.empty();
  result.validate();
  return result;
}

void AttentionOptions::write_fidelity(runtime::Transformer& transformer) const {
  if (fidelity_path.empty()) return;
  const std::optional<nlohmann::json> report = transformer.attention_fidelity();
  if (!report) throw_input_error("--fidelity {}: this backend does not report attention fidelity", fidelity_path);
  std::ofstream out(fidelity_path);
  if (!out) throw_input_error("--fidelity {}: cannot open the file for writing", fidelity_path);
  out << report->dump(2) << "\n";
  if (!out) throw_input_error("--fidelity {}: writing failed", fidelity_path);
}

}  // namespace deltainfer::cli
