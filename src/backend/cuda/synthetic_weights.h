#pragma once
// Fills a device tensor with model::synthetic_weight_value(seed, i, scale) for every element i,
// on the device: an 8B synthetic model is generated in milliseconds instead of uploaded.
#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

namespace deltainfer::cuda {

void fill_synthetic_weights(__nv_bfloat16* out, int64_t count, uint64_t tensor_seed, float scale,
                            cudaStream_t stream);

}  // namespace deltainfer::cuda
