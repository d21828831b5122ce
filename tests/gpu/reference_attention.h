#pragma once
// CPU twin of the decode attention kernel: f64 softmax(scale · q·K^T) · V over the same paged
// layout, for each sequence and query head; also returns the natural-log log-sum-exp.
#include <cmath>
#include <cstdint>
#include <vector>

namespace deltainfer::cuda::test {

struct PagedCacheHost {
  int n_kv_heads = 0;
  int head_dim = 0;
  int page_size = 64;
  std::vector<float> k;  // [num_pages][n_kv_heads][page_size][head_dim]
  std::vector<float> v;
  size_t index(int page, int kv_head, int slot) const {
    return ((static_cast<size_t>(page) * n_kv_heads + kv_head) * page_size + slot) * head_dim;
  }
};

// q: [n_heads][head_dim] of one sequence; pages: its page table; out: [n_heads][head_dim].
inline void reference_decode_attention(const std::vector<float>& q, size_t q_offset, const PagedCacheHost& cache,
                                       const int32_t* pages, int kv_len, int n_heads, float scale,
                                       std::vector<double>& out, size_t out_offset, std::vector<double>& lse,
                                       size_t lse_offset) {
  const int d = cache.head_dim;
  const int group = n_heads / cache.n_kv_heads;
  std::vector<double> scores(static_cast<size_t>(kv_len));
  for (int h = 0; h < n_heads; ++h) {
    const int kv_head = h / group;
    const float* qh = q.data() + q_offset + static_cast<size_t>(h) * d;
    double max_score = -INFINITY;
    for (int j = 0; j < kv_len; ++j) {
      const float* kj = cache.k.data() + cache.index(pages[j / cache.page_size], kv_head, j % cache.page_size);
      double dot = 0.0;
      for (int i = 0; i < d; ++i) dot += static_cast<double>(qh[i]) * kj[i];
      scores[j] = dot * scale;
      max_score = std::max(max_score, scores[j]);
    }
    double sum = 0.0;
    for (int j = 0; j < kv_len; ++j) sum += std::exp(scores[j] - max_score);
    double* oh = out.data() + out_offset + static_cast<size_t>(h) * d;
    for (int i = 0; i < d; ++i) oh[i] = 0.0;
    for (int j = 0; j < kv_len; ++j) {
      const double weight = std::exp(scores[j] - max_score) / sum;
      const float* vj = cache.v.data() + cache.index(pages[j / cache.page_size], kv_head, j % cache.page_size);
      for (int i = 0; i < d; ++i) oh[i] += weight * vj[i];
    }
    lse[lse_offset + h] = kv_len > 0 ? max_score + std::log(sum) : -INFINITY;
  }
}

}  // namespace deltainfer::cuda::test
