#pragma once
// e4m3 codes (core/fp8_e4m3.h) to their values on the device, through the hardware's e4m3 -> f16
// conversion. Exact: every e4m3 value, subnormals included, is an f16, f32 and bf16 value.
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <cstdint>

namespace deltainfer::cuda {

// The codes in bits 0..7 (.x) and 8..15 (.y) of `codes`.
__device__ __forceinline__ float2 e4m3x2_to_float2(uint32_t codes) {
  const __half2_raw h = __nv_cvt_fp8x2_to_halfraw2(static_cast<__nv_fp8x2_storage_t>(codes & 0xFFFFu), __NV_E4M3);
  return __half22float2(*reinterpret_cast<const __half2*>(&h));
}

__device__ __forceinline__ float e4m3_to_float(uint8_t code) {
  return __half2float(__half(__nv_cvt_fp8_to_halfraw(code, __NV_E4M3)));
}

}  // namespace deltainfer::cuda
