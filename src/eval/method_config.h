#pragma once
// From a MethodSpec of `deltainfer eval --methods` to the AttentionConfig it runs, and the share
// of dense attention work it does (the "attended" column of the results).
//
// Names (docs/METHODS.md):
//   dense             exact attention in prefill and decode
//   sliding           sliding-window + sink prefill, dense decode
//   sliding+delta     the same with Δ correction (also written sliding+Δ)
//   vslash, vslash+delta   vertical-slash block-sparse prefill, without / with Δ
//   delta             dense prefill, DELTA decode
//   tidal             dense prefill, TidalDecode-style decode (DELTA without the recency window)
//   quest             dense prefill, Quest decode
//   streaming         StreamingLLM: sink + window in prefill and in decode
// Keys: window, sink, gamma, dense_tail, variant (delta|recompute|interpolate), vertical, slash, block,
// estimate_queries, budget, recency, page, full_layers, delta_layers (e.g. 2/8/15), aggregation (max|sum),
// and decode=<kind>
// to pair a sparse prefill with a sparse decode (e.g. "sliding+delta:decode=delta,budget=512").
// window, budget, vertical and slash also take a share of the context, "25%", resolved per
// context length (a budget rounds to whole pages). The vertical-slash defaults (1000 columns,
// 6096 diagonals: MInference's for 128K contexts) keep every key below 7K tokens, so at the
// lengths a small model reaches give shares, e.g. "vslash+delta:vertical=5%,slash=20%".
#include <cstdint>

#include "attention/attention_config.h"
#include "eval/method_spec.h"

namespace deltainfer::eval {

// Throws InputError naming the method and the unknown name, key or bad value.
attention::AttentionConfig method_config(const MethodSpec& spec, int64_t context_tokens);

// Attended (query, key) pairs as a share of dense causal attention, counted from the
// configuration: prefill over a prompt of `context_tokens`, and the first decode step after it
// averaged over the layers. The Δ pass's dense rows count as attended work. Vertical-slash is
// data-dependent: its prefill share is an upper bound (every kept column and diagonal distinct).
struct AttendedShare {
  double prefill = 1.0;
  double decode = 1.0;
};
AttendedShare attended_share(const attention::AttentionConfig& config, int64_t context_tokens, int n_layers);

}  // namespace deltainfer::eval
