#pragma once
// f64 CPU twins of the sparse decode policies (METHODS.md sections 2, 3), independent of
// src/attention: DELTA's page scores from exact softmax probabilities, the top-k page rule (ties
// toward earlier pages, result in position order), Quest's page bounds and scores, and softmax
// attention over an explicit list of positions. Caches use reference_attention.h's layout.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <vector>

#include "gpu/reference_attention.h"

namespace deltainfer::cuda::test {

inline const float* key_row(const PagedCacheHost& c, const int32_t* pages, int kv_head, int t) {
  return c.k.data() + c.index(pages[t / c.page_size], kv_head, t % c.page_size);
}
inline const float* value_row(const PagedCacheHost& c, const int32_t* pages, int kv_head, int t) {
  return c.v.data() + c.index(pages[t / c.page_size], kv_head, t % c.page_size);
}

inline double dot(const float* a, const float* b, int d) {
  double s = 0.0;
  for (int i = 0; i < d; ++i) s += static_cast<double>(a[i]) * b[i];
  return s;
}

// DELTA page scores of one sequence: u_t = max (or sum) over heads of softmax probabilities;
// page score = sum over the page; sink page and recency pages +inf. q: [n_heads][d].
inline std::vector<double> reference_delta_page_scores(const float* q, const PagedCacheHost& c, const int32_t* pages,
                                                       int kv_len, int n_heads, double scale, int page, int recency,
                                                       bool keep_sink, bool sum_heads) {
  const int d = c.head_dim;
  const int group = n_heads / c.n_kv_heads;
  std::vector<double> unified(static_cast<size_t>(kv_len), 0.0), logits(static_cast<size_t>(kv_len));
  for (int h = 0; h < n_heads; ++h) {
    double m = -INFINITY;
    for (int t = 0; t < kv_len; ++t) {
      logits[t] = scale * dot(q + static_cast<size_t>(h) * d, key_row(c, pages, h / group, t), d);
      m = std::max(m, logits[t]);
    }
    double sum = 0.0;
    for (int t = 0; t < kv_len; ++t) sum += std::exp(logits[t] - m);
    for (int t = 0; t < kv_len; ++t) {
      const double p = std::exp(logits[t] - m) / sum;
      unified[t] = sum_heads ? unified[t] + p : std::max(unified[t], p);
    }
  }
  const int n_pages = (kv_len + page - 1) / page;
  const int first_recent = std::max(0, n_pages - (recency + page - 1) / page);  // last ceil(recency/page) pages
  std::vector<double> scores(static_cast<size_t>(n_pages), 0.0);
  for (int t = 0; t < kv_len; ++t) scores[t / page] += unified[t];
  for (int p = 0; p < n_pages; ++p) {
    if ((keep_sink && p == 0) || p >= first_recent) scores[p] = INFINITY;
  }
  return scores;
}

// The top k pages (ties toward earlier pages), in position order.
inline std::vector<int> reference_top_pages(const std::vector<double>& scores, int k) {
  std::vector<int> order(scores.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return scores[a] > scores[b]; });
  order.resize(std::min(order.size(), static_cast<size_t>(k)));
  std::sort(order.begin(), order.end());
  return order;
}

inline std::vector<int32_t> pages_to_positions(const std::vector<int>& pages, int page, int kv_len) {
  std::vector<int32_t> positions;
  for (int p : pages) {
    for (int t = p * page; t < std::min(kv_len, (p + 1) * page); ++t) positions.push_back(t);
  }
  return positions;
}

// Quest bound of one 16-token page for one KV head: element-wise min/max of its keys.
inline void reference_quest_bounds(const PagedCacheHost& c, const int32_t* pages, int kv_head, int quest_page,
                                   int kv_len, std::vector<float>& lo, std::vector<float>& hi) {
  lo.assign(static_cast<size_t>(c.head_dim), INFINITY);
  hi.assign(static_cast<size_t>(c.head_dim), -INFINITY);
  for (int t = quest_page * 16; t < std::min(kv_len, quest_page * 16 + 16); ++t) {
    const float* k = key_row(c, pages, kv_head, t);
    for (int i = 0; i < c.head_dim; ++i) {
      lo[i] = std::min(lo[i], k[i]);
      hi[i] = std::max(hi[i], k[i]);
    }
  }
}

// Quest page score: max over the group's heads of sum_d max(q_d lo_d, q_d hi_d).
inline double reference_quest_score(const float* q_group, int group, int d, const std::vector<float>& lo,
                                    const std::vector<float>& hi) {
  double best = -INFINITY;
  for (int g = 0; g < group; ++g) {
    double s = 0.0;
    for (int i = 0; i < d; ++i) {
      const double qd = q_group[static_cast<size_t>(g) * d + i];
      s += std::max(qd * lo[i], qd * hi[i]);
    }
    best = std::max(best, s);
  }
  return best;
}

// Softmax attention of query head h (q_h: [d]) over the listed positions; out: [d].
inline void reference_attention_over(const float* q_h, const PagedCacheHost& c, const int32_t* pages, int kv_head,
                                     const std::vector<int32_t>& positions, double scale, double* out) {
  const int d = c.head_dim;
  std::vector<double> logits(positions.size());
  double m = -INFINITY;
  for (size_t i = 0; i < positions.size(); ++i) {
    logits[i] = scale * dot(q_h, key_row(c, pages, kv_head, positions[i]), d);
    m = std::max(m, logits[i]);
  }
  double sum = 0.0;
  for (double l : logits) sum += std::exp(l - m);
  for (int i = 0; i < d; ++i) out[i] = 0.0;
  for (size_t j = 0; j < positions.size(); ++j) {
    const double w = std::exp(logits[j] - m) / sum;
    const float* v = value_row(c, pages, kv_head, positions[j]);
    for (int i = 0; i < d; ++i) out[i] += w * v[i];
  }
}

}  // namespace deltainfer::cuda::test
