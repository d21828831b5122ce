#pragma once
// What a forward pass must move and compute at least, from the model's shapes: the floors the
// `bench` tables print beside the measured times.
#include <algorithm>
#include <cstdint>

#include "attention/attention_config.h"
#include "attention/layer_schedule.h"
#include "attention/method_registry.h"
#include "core/kv_page.h"
#include "eval/method_config.h"
#include "model/model_config.h"

namespace deltainfer::cli {

struct ModelCosts {
  double weight_bytes = 0;        // bf16, every matrix read once per decode step
  double flops_per_token = 0;     // linear layers, 2 per multiply-add
  double kv_bytes_per_token = 0;  // all layers, K and V, in the cache's dtype (FP8: codes + scales)
  double attention_flops_per_pair = 0;  // per (query, key) pair over all layers
  int n_layers = 0;
};

inline ModelCosts model_costs(const model::ModelConfig& c, KvDtype kv_dtype = KvDtype::Bf16) {
  const double d = c.d_model, q = c.q_dim(), kv = c.kv_dim(), ffn = c.ffn_dim, layers = c.n_layers;
  const double per_layer = d * q + 2 * d * kv + q * d + 3 * d * ffn;
  const double params = per_layer * layers + d * c.vocab_size * (c.tied_embeddings ? 1 : 2);
  ModelCosts costs;
  costs.weight_bytes = 2.0 * (per_layer * layers + d * c.vocab_size);
  costs.flops_per_token = 2.0 * (params - (c.tied_embeddings ? 0 : d * c.vocab_size));
  costs.kv_bytes_per_token =
      2.0 * layers * static_cast<double>(kv_pool_page_bytes(kv_dtype, c.n_kv_heads, c.head_dim)) / kKvPageTokens;
  costs.attention_flops_per_pair = 4.0 * c.n_heads * c.head_dim * layers;
  costs.n_layers = c.n_layers;
  return costs;
}

// KV bytes one decode step of one sequence of `length` positions reads under `method`: every key
// in dense and Δ-selecting layers, the selected set in sparse layers (the method's sparse_tokens:
// DELTA/Tidal/Quest the budget, StreamingLLM sink + window).
inline double attended_kv_bytes(const ModelCosts& costs, const attention::AttentionConfig& method, int64_t length) {
  const attention::LayerSchedule schedule(method.decode, costs.n_layers);
  const double per_layer_token = costs.kv_bytes_per_token / costs.n_layers;
  const int64_t sparse_tokens = attention::decode_method(method.decode.kind).sparse_tokens(method);
  double bytes = 0;
  for (int layer = 0; layer < costs.n_layers; ++layer) {
    const bool sparse = schedule.role(layer) == attention::LayerRole::Sparse;
    bytes += per_layer_token * static_cast<double>(sparse ? std::min(sparse_tokens, length) : length);
  }
  return bytes;
}

// FLOPs a prefill of an `n`-token prompt must do under `method`: the linear layers, and the
// (query, key) pairs the method attends (eval::attended_share: window + sink, the Δ pass's dense
// rows and tail counted as work; vertical-slash at its upper bound), 4 · heads · head_dim each per
// layer. Dense: every causal pair.
inline double prefill_flops(const ModelCosts& costs, const attention::AttentionConfig& method, int64_t n) {
  const double tokens = static_cast<double>(n);
  const double causal_pairs = 0.5 * tokens * (tokens + 1.0);
  const double share = eval::attended_share(method, n, costs.n_layers).prefill;
  return costs.flops_per_token * tokens + costs.attention_flops_per_pair * causal_pairs * share;
}

}  // namespace deltainfer::cli
