#pragma once
// Test support for the sparse prefill and delta-correction kernels: a random problem over a
// shuffled paged KV cache (slots past kv_len hold NaN), uploaded to the device, and an f64
// reference of softmax attention of one query row over any key set.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "backend/cuda/prefill_attention.h"

namespace deltainfer::cuda::test {

template <typename T>
struct DeviceVec {
  T* ptr = nullptr;
  size_t size = 0;
  DeviceVec() = default;
  explicit DeviceVec(size_t n) : size(n) {
    if (cudaMalloc(&ptr, std::max<size_t>(n, 1) * sizeof(T)) != cudaSuccess) ptr = nullptr;
  }
  explicit DeviceVec(const std::vector<T>& host) { assign(host); }
  void assign(const std::vector<T>& host) {
    cudaFree(ptr);
    size = host.size();
    if (cudaMalloc(&ptr, std::max<size_t>(size, 1) * sizeof(T)) != cudaSuccess) {
      ptr = nullptr;
      return;
    }
    cudaMemcpy(ptr, host.data(), size * sizeof(T), cudaMemcpyHostToDevice);
  }
  ~DeviceVec() { cudaFree(ptr); }
  DeviceVec(const DeviceVec&) = delete;
  DeviceVec& operator=(const DeviceVec&) = delete;
  std::vector<T> download() const {
    std::vector<T> host(size);
    cudaMemcpy(host.data(), ptr, size * sizeof(T), cudaMemcpyDeviceToHost);
    return host;
  }
  void poison() { cudaMemset(ptr, 0xff, std::max<size_t>(size, 1) * sizeof(T)); }  // bf16/f32 NaN
};

struct ProblemShape {
  int n_q;
  int kv_len;
  int first_pos;  // queries at first_pos .. first_pos + n_q - 1
  int n_heads;
  int n_kv_heads;
  int head_dim;
};

// Host copies (as floats holding bf16 values) and device buffers of one random problem.
struct PagedProblem {
  ProblemShape shape;
  // Compacted queries (PrefillAttentionArgs::q_pos): row i sits at positions[i]; empty: at
  // shape.first_pos + i. Set by the test before calling reference().
  std::vector<int32_t> positions;
  int num_pages = 0;
  std::vector<int32_t> pages;
  std::vector<float> q, k, v;
  DeviceVec<__nv_bfloat16> d_q, d_k, d_v;
  DeviceVec<int32_t> d_pages;

  PagedProblem(const ProblemShape& s, std::mt19937_64& rng) : shape(s) {
    const int page = kKvPageSize;
    const int seq_pages = (s.kv_len + page - 1) / page;
    num_pages = seq_pages + 3;  // physical pages nobody reads
    pages.resize(static_cast<size_t>(num_pages));
    std::iota(pages.begin(), pages.end(), 0);
    std::shuffle(pages.begin(), pages.end(), rng);
    pages.resize(static_cast<size_t>(seq_pages));
    const size_t pool = static_cast<size_t>(num_pages) * s.n_kv_heads * page * s.head_dim;
    q = values(static_cast<size_t>(s.n_q) * s.n_heads * s.head_dim, 1.5f, rng);
    k = values(pool, 1.0f, rng);
    v = values(pool, 1.0f, rng);
    for (int key = s.kv_len; key < seq_pages * page; ++key) {
      for (int h = 0; h < s.n_kv_heads; ++h) {
        for (int e = 0; e < s.head_dim; ++e) {
          k[key_offset(key, h) + static_cast<size_t>(e)] = NAN;
          v[key_offset(key, h) + static_cast<size_t>(e)] = NAN;
        }
      }
    }
    upload(d_q, q);
    upload(d_k, k);
    upload(d_v, v);
    d_pages.assign(pages);
  }

  size_t key_offset(int key, int kv_head) const {
    const size_t page = static_cast<size_t>(pages[static_cast<size_t>(key / kKvPageSize)]);
    return ((page * shape.n_kv_heads + static_cast<size_t>(kv_head)) * kKvPageSize +
            static_cast<size_t>(key % kKvPageSize)) *
           static_cast<size_t>(shape.head_dim);
  }
  size_t row_elems() const { return static_cast<size_t>(shape.n_heads) * shape.head_dim; }
  float scale() const { return 1.0f / std::sqrt(static_cast<float>(shape.head_dim)); }

  PrefillAttentionArgs args(__nv_bfloat16* out, float* lse) const {
    PrefillAttentionArgs a;
    a.q = d_q.ptr;
    a.first_pos = shape.first_pos;
    a.n_q = shape.n_q;
    a.n_heads = shape.n_heads;
    a.softmax_scale = scale();
    a.kv = bf16_sequence_kv(d_k.ptr, d_v.ptr, num_pages, shape.n_kv_heads, shape.head_dim, d_pages.ptr, shape.kv_len);
    a.out = out;
    a.lse = lse;
    return a;
  }

  // f64 softmax attention of query row `row`, head `head`, over the keys j <= its position for
  // which keep(pos, j) holds; writes head_dim values to out and returns the log-sum-exp.
  double reference(int row, int head, const std::function<bool(int, int)>& keep,
                   double* out) const {
    const int d = shape.head_dim;
    const int pos = positions.empty() ? shape.first_pos + row : positions[static_cast<size_t>(row)];
    const int kvh = head / (shape.n_heads / shape.n_kv_heads);
    const float* qi = &q[(static_cast<size_t>(row) * shape.n_heads + head) * d];
    std::vector<double> scores;
    std::vector<int> keys;
    double mx = -INFINITY;
    for (int j = 0; j <= pos; ++j) {
      if (!keep(pos, j)) continue;
      const float* kj = &k[key_offset(j, kvh)];
      double dot = 0.0;
      for (int e = 0; e < d; ++e) dot += static_cast<double>(qi[e]) * kj[e];
      scores.push_back(dot * scale());
      keys.push_back(j);
      mx = std::max(mx, scores.back());
    }
    std::fill(out, out + d, 0.0);
    double sum = 0.0;
    for (size_t t = 0; t < keys.size(); ++t) {
      const double w = std::exp(scores[t] - mx);
      sum += w;
      const float* vj = &v[key_offset(keys[t], kvh)];
      for (int e = 0; e < d; ++e) out[e] += w * vj[e];
    }
    for (int e = 0; e < d; ++e) out[e] /= sum;
    return mx + std::log(sum);
  }

 private:
  static std::vector<float> values(size_t n, float sigma, std::mt19937_64& rng) {
    std::normal_distribution<float> dist(0.0f, sigma);
    std::vector<float> out(n);
    for (float& x : out) x = __bfloat162float(__float2bfloat16(dist(rng)));
    return out;
  }
  static void upload(DeviceVec<__nv_bfloat16>& dst, const std::vector<float>& src) {
    std::vector<__nv_bfloat16> b(src.size());
    for (size_t i = 0; i < src.size(); ++i) b[i] = __float2bfloat16(src[i]);
    dst.assign(b);
  }
};

// The cases as given (their kernel field left at kSm90: v3) followed by a copy of each on the
// FA3-style kernel, PrefillKernel::kSm90Ws, named with the suffix "_sm90ws" (gtest filters on it).
// Case: any struct with a std::string name and a PrefillKernel kernel.
template <typename Case>
std::vector<Case> with_sm90ws_copies(const std::vector<Case>& shapes) {
  std::vector<Case> all = shapes;
  for (Case c : shapes) {
    c.kernel = PrefillKernel::kSm90Ws;
    c.name += "_sm90ws";
    all.push_back(c);
  }
  return all;
}

// Rows compared with the reference: all for small problems, a spread sample with both ends and
// every multiple of 64 near the start for large ones.
inline std::vector<int> checked_rows(int n_q) {
  std::vector<int> rows;
  const int step = n_q > 1100 ? 11 : 1;
  for (int i = 0; i < n_q; i += step) rows.push_back(i);
  for (int i = std::max(0, n_q - 70); i < n_q; ++i) rows.push_back(i);
  for (int i = 0; i < std::min(n_q, 300); ++i) rows.push_back(i);
  std::sort(rows.begin(), rows.end());
  rows.erase(std::unique(rows.begin(), rows.end()), rows.end());
  return rows;
}

}  // namespace deltainfer::cuda::test
