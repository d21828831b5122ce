#pragma once
// KvPools: every layer's paged K and V pools of the CUDA transformer, in the --kv-dtype it runs
// with, allocated once (the memory plan counts kv_pool_page_bytes per page, core/kv_page.h).
//   bf16: K, V [pages][n_kv_heads][kKvPageSize][head_dim] bf16 per layer.
//   fp8:  the same shape in e4m3 codes + f32 scales [pages][n_kv_heads] for K and for V per
//         layer (core/kv_fp8_page.h), written by fp8_append_kv.
// Accessors of the other dtype's storage throw Error: a caller that reads bf16 from an FP8 pool
// is a bug, not an input.
#include <cuda_bf16.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "backend/cuda/device_buffer.h"
#include "backend/cuda/paged_kv.h"
#include "core/kv_page.h"

namespace deltainfer::cuda {

class KvPools {
 public:
  KvPools() = default;
  KvPools(KvDtype dtype, int n_layers, int64_t pages, int n_kv_heads, int head_dim);

  KvDtype dtype() const { return dtype_; }
  int64_t pages() const { return pages_; }
  size_t device_bytes() const;

  // bf16 pools.
  __nv_bfloat16* k_bf16(int layer);
  __nv_bfloat16* v_bf16(int layer);
  // FP8 pools: codes and per-(page, KV head) scales.
  uint8_t* k_codes(int layer);
  uint8_t* v_codes(int layer);
  float* k_scales(int layer);
  float* v_scales(int layer);
  // Layer `layer`'s pools as the kernels read them, either dtype: pools, dtype, scales (FP8),
  // num_pages, n_kv_heads, head_dim; the caller adds the page table and lengths it reads through.
  PagedKv layer(int layer) const;

 private:
  struct Layer {
    DeviceBuffer<unsigned char> k, v;  // bf16 values or e4m3 codes
    DeviceBuffer<float> k_scales, v_scales;  // FP8 only
  };
  const Layer& at(int layer) const;
  Layer& at(int layer) { return const_cast<Layer&>(static_cast<const KvPools&>(*this).at(layer)); }
  void require(KvDtype dtype, const char* what) const;

  KvDtype dtype_ = KvDtype::Bf16;
  int64_t pages_ = 0;
  int n_kv_heads_ = 0;
  int head_dim_ = 0;
  std::vector<Layer> layers_;
};

}  // namespace deltainfer::cuda
