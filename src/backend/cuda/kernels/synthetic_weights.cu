#include "backend/cuda/cuda_check.h"
#include "backend/cuda/synthetic_weights.h"

namespace deltainfer::cuda {
namespace {

// Must stay identical to model::synthetic_weight_value (synthetic_model_source.cpp).
__device__ uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

__global__ void fill_kernel(__nv_bfloat16* out, int64_t count, uint64_t seed, float scale) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += stride) {
    float value = 1.0f;
    if (scale != 0.0f) {
      const uint64_t bits = splitmix64(seed ^ splitmix64(static_cast<uint64_t>(i)));
      const double unit = static_cast<double>(bits >> 11) * (1.0 / 9007199254740992.0);
      value = static_cast<float>((2.0 * unit - 1.0) * scale);
    }
    out[i] = __float2bfloat16(value);
  }
}

}  // namespace

void fill_synthetic_weights(__nv_bfloat16* out, int64_t count, uint64_t tensor_seed, float scale,
                            cudaStream_t stream) {
  if (count <= 0) return;
  fill_kernel<<<1024, 256, 0, stream>>>(out, count, tensor_seed, scale);
  CUDA_CHECK_LAUNCH();
}

}  // namespace deltainfer::cuda
