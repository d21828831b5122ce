#pragma once
// AttentionConfig: which attention policy runs in prefill and in decode, with every knob of
// docs/METHODS.md and its default. Parsed at the edge (tools/attention_options), validated once.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace deltainfer::attention {

// One value per line of attention/methods/prefill_methods.def, in its order.
enum class PrefillKind {
#define DELTAINFER_PREFILL_METHOD(kind, name) kind,
#include "attention/methods/prefill_methods.def"
#undef DELTAINFER_PREFILL_METHOD
};
// Delta: every row i gets Δ of the strided row r = γ⌊i/γ⌋ (causal, the default). Recompute: only
// rows r are replaced by their dense output. Interpolate: blend of the Δs of the strided rows around
// i (reads a later row: not causal, ablation only).
enum class DeltaVariant { Delta, Recompute, Interpolate };
// One value per line of attention/methods/decode_methods.def, in its order.
enum class DecodeKind {
#define DELTAINFER_DECODE_METHOD(kind, name) kind,
#include "attention/methods/decode_methods.def"
#undef DELTAINFER_DECODE_METHOD
};
enum class HeadAggregation { Max, Sum };

struct PrefillConfig {
  PrefillKind kind = PrefillKind::Dense;
  bool delta = false;                 // Δ correction on top of a sparse kind
  int64_t gamma = 64;                 // stride of the dense rows
  DeltaVariant variant = DeltaVariant::Delta;
  // With Δ, the last `dense_tail` rows of each prefill attend densely: the prompt's final tokens
  // (the question, and the row whose logits give the first answer token) see every key, as in
  // the authors' code (which keeps at least 128 such rows). 0: only the strided rows are dense.
  int64_t dense_tail = 128;
  // Vertical-slash (MInference-style) estimation and block size.
  int64_t estimate_queries = 64;      // last queries of the chunk used to estimate
  int64_t block = 64;                 // key block (query blocks: kVerticalSlashQueryBlock rows)
  int64_t vertical = 1000;            // key columns kept per head (MInference's Llama-3 default)
  int64_t slash = 6096;               // diagonals kept per head (idem)
};

struct DecodeConfig {
  DecodeKind kind = DecodeKind::Dense;
  int64_t budget = 2048;              // tokens attended by sparse layers (DELTA, Tidal, Quest)
  int64_t recency = 128;              // tokens always kept by DELTA (rounded up to pages)
  int64_t page = 16;                  // selection granularity; 1 = token-level
  int full_layers = 2;                // F: layers 0..F-1 dense (DELTA, Tidal, Quest)
  std::vector<int> delta_layers;      // empty: {F, n_layers / 2}
  HeadAggregation aggregation = HeadAggregation::Max;
};

struct AttentionConfig {
  PrefillConfig prefill;
  DecodeConfig decode;
  int64_t window = 2048;              // sliding prefill and streaming decode
  int64_t sink = 64;                  // first tokens always kept by sliding / streaming
  bool instrument = false;            // fidelity statistics (costs an extra dense pass per layer)

  // Throws InputError naming the offending flag. n_layers == 0: the model is not known yet, so
  // the checks that depend on it (Δ-layer indices) are left to the call that knows it.
  void validate(int n_layers = 0) const;
};

// "dense", "sliding" or "vslash", optionally followed by "+delta" (or "+Δ"): the prefill kind and
// whether Δ corrects it. False (and `prefill` untouched) for anything else.
bool parse_prefill_method(std::string_view text, PrefillConfig& prefill);

// The Δ-layers actually used for a model of n_layers: the configured list or {F, n_layers / 2},
// sorted and without duplicates.
std::vector<int> resolved_delta_layers(const DecodeConfig& decode, int n_layers);

// True when both phases compute exact dense attention (what a dense-only backend can run).
bool is_dense(const AttentionConfig& config);

// One line, e.g. "prefill sliding+delta(γ=64) window=2048 sink=64 | decode delta budget=2048 ...".
std::string describe(const AttentionConfig& config);

const char* prefill_kind_name(PrefillKind kind);
const char* delta_variant_name(DeltaVariant variant);
const char* decode_kind_name(DecodeKind kind);
const char* head_aggregation_name(HeadAggregation aggregation);

}  // namespace deltainfer::attention
