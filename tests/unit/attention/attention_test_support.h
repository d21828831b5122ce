#pragma once
// Shared by the attention tests: random Q/K/V with a printed seed, a model shape, and a naive
// double-precision reference of exact softmax attention over an explicit key predicate.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "attention/kv_view.h"
#include "model/model_config.h"

namespace deltainfer::attention::testing {

inline unsigned fresh_seed(const char* test) {
  const unsigned seed = std::random_device{}();
  std::cout << "[ seed ] " << test << ": " << seed << "\n";
  return seed;
}

inline model::ModelConfig small_model(int n_layers = 6, int n_heads = 6, int n_kv_heads = 2, int head_dim = 16) {
  model::ModelConfig config;
  config.n_layers = n_layers;
  config.n_heads = n_heads;
  config.n_kv_heads = n_kv_heads;
  config.head_dim = head_dim;
  return config;
}

// Random keys, values and queries for `length` positions of one layer, in a paged KV pool whose
// page table is a random permutation (pages out of order, as a shared pool hands them out).
struct RandomLayer {
  HeadShape shape;
  std::vector<float> k, v, q;  // k, v: the pools; q: [length][n_heads][head_dim]
  std::vector<int32_t> page_table;

  RandomLayer(const model::ModelConfig& model, int64_t length, std::mt19937& rng, float key_scale = 2.0f)
      : shape{model.n_heads, model.n_kv_heads, model.head_dim} {
    std::normal_distribution<float> normal(0.0f, 1.0f);
    const int64_t pages = pages_for_positions(length) + 1;  // one spare page in the pool
    page_table.resize(static_cast<size_t>(pages));
    for (size_t i = 0; i < page_table.size(); ++i) page_table[i] = static_cast<int32_t>(i);
    std::shuffle(page_table.begin(), page_table.end(), rng);
    const size_t pool_size = static_cast<size_t>(pages * shape.n_kv_heads * kKvPageTokens * shape.head_dim);
    k.resize(pool_size);
    v.resize(pool_size);
    q.resize(static_cast<size_t>(length * shape.q_row_stride()));
    for (float& x : k) x = key_scale * normal(rng);
    for (float& x : v) x = normal(rng);
    for (float& x : q) x = normal(rng);
  }

  KvView kv(int64_t length) const {
    return {k.data(), v.data(), page_table.data(), shape.n_kv_heads, shape.head_dim, length};
  }
  const float* key(int kv_head, int64_t pos) const { return kv(pos + 1).key(kv_head, pos); }
  const float* value(int kv_head, int64_t pos) const { return kv(pos + 1).value(kv_head, pos); }
  const float* q_row(int64_t pos) const { return q.data() + pos * shape.q_row_stride(); }
};

// Exact attention of query `qh` (one head) at any position over the keys j < length with
// admits(j), in double; returns head_dim outputs.
inline std::vector<double> reference_attention(const RandomLayer& layer, int head, const float* qh, int64_t length,
                                               const std::function<bool(int64_t)>& admits) {
  const int d = layer.shape.head_dim;
  const int kv_head = layer.shape.kv_head_of(head);
  std::vector<double> logits(static_cast<size_t>(length), -INFINITY);
  double max_logit = -INFINITY;
  for (int64_t j = 0; j < length; ++j) {
    if (!admits(j)) continue;
    double dot = 0;
    for (int c = 0; c < d; ++c) dot += double{qh[c]} * layer.key(kv_head, j)[c];
    logits[static_cast<size_t>(j)] = dot / std::sqrt(double{1.0 * d});
    max_logit = std::max(max_logit, logits[static_cast<size_t>(j)]);
  }
  std::vector<double> out(static_cast<size_t>(d), 0.0);
  double total = 0;
  for (int64_t j = 0; j < length; ++j) {
    if (!admits(j)) continue;
    const double w = std::exp(logits[static_cast<size_t>(j)] - max_logit);
    total += w;
    for (int c = 0; c < d; ++c) out[static_cast<size_t>(c)] += w * layer.value(kv_head, j)[c];
  }
  for (double& x : out) x = total > 0 ? x / total : 0.0;
  return out;
}

inline float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  float worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(a[i] - b[i]));
  return worst;
}

}  // namespace deltainfer::attention::testing
