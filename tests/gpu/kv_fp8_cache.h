#pragma once
// A paged FP8 KV cache built the way the engine builds one, through the CPU twin of the FP8 append
// (core/kv_fp8_page.h): a prefill chunk per sequence, then decode appends of one row, some of them
// of larger magnitude so that pages already holding rows get rescaled. Beside it, the same cache
// dequantized (code * scale; exact in bf16) as a host f32 cache for the f64 references and as a
// bf16 device pool for the bf16 kernels: an FP8 reader is checked against the bf16 reader of the
// values it should see.
// Poison: codes of unwritten rows and spare pages are the NaN code, scales of never-written slabs
// NaN, and the dequantized caches NaN there: no reader may let them into a result.
#include <cuda_bf16.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <vector>

#include "backend/cuda/device_buffer.h"
#include "backend/cuda/paged_kv.h"
#include "core/fp8_e4m3.h"
#include "core/kv_fp8_page.h"
#include "gpu/gpu_test_support.h"
#include "gpu/reference_attention.h"

namespace deltainfer::cuda::test {

class Fp8TestCache {
 public:
  // Room for sequences of up to capacity[s] positions, pages shuffled over the pool, 3 spare pages.
  Fp8TestCache(const std::vector<int>& capacity, int n_kv_heads, int head_dim, std::mt19937_64& rng)
      : n_kv_heads_(n_kv_heads), head_dim_(head_dim), lens_(capacity.size(), 0), rng_(rng) {
    const int longest = std::max(1, *std::max_element(capacity.begin(), capacity.end()));
    stride_ = (longest + kKvPageSize - 1) / kKvPageSize;
    num_pages_ = stride_ * static_cast<int>(capacity.size()) + 3;
    std::vector<int32_t> physical(static_cast<size_t>(num_pages_));
    std::iota(physical.begin(), physical.end(), 0);
    std::shuffle(physical.begin(), physical.end(), rng_);
    table_.assign(physical.begin(), physical.begin() + static_cast<std::ptrdiff_t>(capacity.size()) * stride_);
    const size_t values = static_cast<size_t>(num_pages_) * n_kv_heads * kKvPageSize * head_dim;
    k_codes_.assign(values, kFp8E4m3Nan);
    v_codes_.assign(values, kFp8E4m3Nan);
    k_scales_.assign(static_cast<size_t>(num_pages_) * n_kv_heads, NAN);
    v_scales_.assign(k_scales_.size(), NAN);
    deq_.n_kv_heads = n_kv_heads;
    deq_.head_dim = head_dim;
    deq_.page_size = kKvPageSize;
  }

  // Appends `count` rows of N(0, magnitude^2) keys and values to sequence s (host only).
  void append(int s, int count, float magnitude) {
    std::normal_distribution<float> normal(0.0f, magnitude);
    const size_t row = static_cast<size_t>(n_kv_heads_) * head_dim_;
    std::vector<float> k(row * static_cast<size_t>(count)), v(k.size());
    for (size_t i = 0; i < k.size(); ++i) {
      k[i] = normal(rng_);
      v[i] = normal(rng_);
    }
    const int32_t* pages = table_.data() + static_cast<size_t>(s) * stride_;
    const std::vector<float> scales_before = k_scales_;
    fp8_append_positions(pool(k_codes_, k_scales_), pages, lens_[static_cast<size_t>(s)], count, k.data());
    for (size_t i = 0; i < k_scales_.size(); ++i) {
      if (std::isfinite(scales_before[i]) && scales_before[i] > 0.0f && k_scales_[i] > scales_before[i]) ++rescaled_;
    }
    fp8_append_positions(pool(v_codes_, v_scales_), pages, lens_[static_cast<size_t>(s)], count, v.data());
    lens_[static_cast<size_t>(s)] += count;
  }

  // A prefill of n rows, then `steps` decode appends of one row; every 5th decode row is 16 times
  // larger (its page's scale grows and the page's earlier codes are rescaled).
  void prefill_then_decode(int s, int n, int steps, float magnitude) {
    if (n > 0) append(s, n, magnitude);
    for (int i = 0; i < steps; ++i) append(s, 1, i % 5 == 4 ? 16.0f * magnitude : magnitude);
  }

  // Dequantizes the host state and uploads codes, scales, the dequantized bf16 pools, table, lengths.
  void upload() {
    const size_t values = k_codes_.size();
    deq_.k.assign(values, NAN);
    deq_.v.assign(values, NAN);
    for (size_t s = 0; s < lens_.size(); ++s) {
      for (int t = 0; t < lens_[s]; ++t) {
        const int page = table_[s * static_cast<size_t>(stride_) + static_cast<size_t>(t / kKvPageSize)];
        for (int h = 0; h < n_kv_heads_; ++h) {
          const size_t at = deq_.index(page, h, t % kKvPageSize);
          const size_t slab = static_cast<size_t>(page) * n_kv_heads_ + static_cast<size_t>(h);
          fp8_dequantize(k_codes_.data() + at, k_scales_[slab], head_dim_, deq_.k.data() + at);
          fp8_dequantize(v_codes_.data() + at, v_scales_[slab], head_dim_, deq_.v.data() + at);
        }
      }
    }
    refresh(d_k_codes_, k_codes_);
    refresh(d_v_codes_, v_codes_);
    refresh(d_k_scales_, k_scales_);
    refresh(d_v_scales_, v_scales_);
    refresh(d_k_deq_, to_bf16(deq_.k));
    refresh(d_v_deq_, to_bf16(deq_.v));
    refresh(d_table_, table_);
    refresh(d_lens_, std::vector<int32_t>(lens_.begin(), lens_.end()));
  }

 private:
  // Uploads into the buffer already there when the size is unchanged, so descriptors taken before
  // (a QuestBounds keeps its pools' PagedKv) stay valid across uploads; allocates otherwise.
  template <typename T>
  static void refresh(DeviceBuffer<T>& buffer, const std::vector<T>& host) {
    if (buffer.size() == host.size() && !host.empty()) {
      buffer.upload(host);
    } else {
      buffer = to_device(host);
    }
  }

 public:

  // The FP8 cache and its dequantized bf16 twin, as the kernels take them (after upload()).
  PagedKv fp8() const {
    PagedKv kv = common();
    kv.dtype = KvDtype::Fp8E4m3;
    kv.k_pool = d_k_codes_.data();
    kv.v_pool = d_v_codes_.data();
    kv.k_scales = d_k_scales_.data();
    kv.v_scales = d_v_scales_.data();
    return kv;
  }
  PagedKv bf16() const {
    PagedKv kv = common();
    kv.k_pool = d_k_deq_.data();
    kv.v_pool = d_v_deq_.data();
    return kv;
  }

  const PagedCacheHost& dequantized() const { return deq_; }
  const std::vector<int>& lens() const { return lens_; }
  const int32_t* pages(int s) const { return table_.data() + static_cast<size_t>(s) * stride_; }
  const std::vector<int32_t>& table() const { return table_; }
  int stride() const { return stride_; }
  int num_pages() const { return num_pages_; }
  int max_len() const { return std::max(1, *std::max_element(lens_.begin(), lens_.end())); }
  const std::vector<uint8_t>& k_codes() const { return k_codes_; }
  const std::vector<uint8_t>& v_codes() const { return v_codes_; }
  const std::vector<float>& k_scales() const { return k_scales_; }
  const std::vector<float>& v_scales() const { return v_scales_; }
  // How many (page, KV head) slabs had their scale raised by a later append (the adversarial case).
  int rescaled_slabs() const { return rescaled_; }

 private:
  Fp8Pool pool(std::vector<uint8_t>& codes, std::vector<float>& scales) {
    Fp8Pool p;
    p.codes = codes.data();
    p.scales = scales.data();
    p.n_kv_heads = n_kv_heads_;
    p.head_dim = head_dim_;
    return p;
  }

  PagedKv common() const {
    PagedKv kv;
    kv.num_pages = num_pages_;
    kv.page_table = d_table_.data();
    kv.page_table_stride = stride_;
    kv.kv_lens = d_lens_.data();
    kv.batch = static_cast<int>(lens_.size());
    kv.max_kv_len = max_len();
    kv.n_kv_heads = n_kv_heads_;
    kv.head_dim = head_dim_;
    return kv;
  }

  int n_kv_heads_, head_dim_, stride_ = 0, num_pages_ = 0, rescaled_ = 0;
  std::vector<int> lens_;
  std::mt19937_64& rng_;
  std::vector<int32_t> table_;
  std::vector<uint8_t> k_codes_, v_codes_;
  std::vector<float> k_scales_, v_scales_;
  PagedCacheHost deq_;
  DeviceBuffer<uint8_t> d_k_codes_, d_v_codes_;
  DeviceBuffer<float> d_k_scales_, d_v_scales_;
  DeviceBuffer<__nv_bfloat16> d_k_deq_, d_v_deq_;
  DeviceBuffer<int32_t> d_table_, d_lens_;
};

}  // namespace deltainfer::cuda::test
