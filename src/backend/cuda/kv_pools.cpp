#include "backend/cuda/kv_pools.h"

#include "core/error.h"

namespace deltainfer::cuda {

KvPools::KvPools(KvDtype dtype, int n_layers, int64_t pages, int n_kv_heads, int head_dim)
    : dtype_(dtype), pages_(pages), n_kv_heads_(n_kv_heads), head_dim_(head_dim) {
  const size_t values = static_cast<size_t>(pages) * static_cast<size_t>(n_kv_heads) * kKvPageTokens *
                        static_cast<size_t>(head_dim);
  const size_t value_bytes = dtype == KvDtype::Fp8E4m3 ? 1 : sizeof(__nv_bfloat16);
  const size_t scales = dtype == KvDtype::Fp8E4m3 ? static_cast<size_t>(pages) * static_cast<size_t>(n_kv_heads) : 0;
  layers_.reserve(static_cast<size_t>(n_layers));
  for (int i = 0; i < n_layers; ++i) {
    Layer layer;
    layer.k = DeviceBuffer<unsigned char>(values * value_bytes);
    layer.v = DeviceBuffer<unsigned char>(values * value_bytes);
    layer.k_scales = DeviceBuffer<float>(scales);
    layer.v_scales = DeviceBuffer<float>(scales);
    layers_.push_back(std::move(layer));
  }
}

size_t KvPools::device_bytes() const {
  size_t bytes = 0;
  for (const Layer& layer : layers_) bytes += layer.k.bytes() + layer.v.bytes() + layer.k_scales.bytes() + layer.v_scales.bytes();
  return bytes;
}

const KvPools::Layer& KvPools::at(int layer) const {
  if (layer < 0 || static_cast<size_t>(layer) >= layers_.size()) throw_error("KvPools: no layer {}", layer);
  return layers_[static_cast<size_t>(layer)];
}

void KvPools::require(KvDtype dtype, const char* what) const {
  if (dtype_ != dtype) throw_error("KvPools: {} asked of a {} pool", what, kv_dtype_name(dtype_));
}

__nv_bfloat16* KvPools::k_bf16(int layer) {
  require(KvDtype::Bf16, "bf16 keys");
  return reinterpret_cast<__nv_bfloat16*>(at(layer).k.data());
}
__nv_bfloat16* KvPools::v_bf16(int layer) {
  require(KvDtype::Bf16, "bf16 values");
  return reinterpret_cast<__nv_bfloat16*>(at(layer).v.data());
}
uint8_t* KvPools::k_codes(int layer) {
  require(KvDtype::Fp8E4m3, "FP8 key codes");
  return at(layer).k.data();
}
uint8_t* KvPools::v_codes(int layer) {
  require(KvDtype::Fp8E4m3, "FP8 value codes");
  return at(layer).v.data();
}
float* KvPools::k_scales(int layer) {
  require(KvDtype::Fp8E4m3, "FP8 key scales");
  return at(layer).k_scales.data();
}
float* KvPools::v_scales(int layer) {
  require(KvDtype::Fp8E4m3, "FP8 value scales");
  return at(layer).v_scales.data();
}
PagedKv KvPools::layer(int layer) const {
  const Layer& pools = at(layer);
  const bool fp8 = dtype_ == KvDtype::Fp8E4m3;
  PagedKv kv;
  kv.k_pool = pools.k.data();
  kv.v_pool = pools.v.data();
  kv.dtype = dtype_;
  kv.k_scales = fp8 ? pools.k_scales.data() : nullptr;
  kv.v_scales = fp8 ? pools.v_scales.data() : nullptr;
  kv.num_pages = static_cast<int>(pages_);
  kv.n_kv_heads = n_kv_heads_;
  kv.head_dim = head_dim_;
  return kv;
}

}  // namespace deltainfer::cuda
