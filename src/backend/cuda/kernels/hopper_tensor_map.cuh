#pragma once
// Host side of TMA: encoding a CUtensorMap (the descriptor a cp.async.bulk.tensor load reads)
// without linking libcuda, through the runtime's driver entry point.
#include <cuda.h>
#include <cudaTypedefs.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace deltainfer::cuda::hopper {

// cuTensorMapEncodeTiled, looked up once; nullptr when the driver does not provide it.
inline PFN_cuTensorMapEncodeTiled_v12000 tensor_map_encoder() {
  static const PFN_cuTensorMapEncodeTiled_v12000 encode = [] {
    void* fn = nullptr;
    cudaDriverEntryPointQueryResult result{};
    if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &fn, 12000, cudaEnableDefault,
                                         &result) != cudaSuccess ||
        result != cudaDriverEntryPointSuccess) {
      fn = nullptr;
    }
    return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(fn);
  }();
  return encode;
}

// A 3-D bf16 map over [outer][middle][inner] (inner contiguous; strides in bytes, multiples of
// 16) with a box of 64 inner x box_middle x box_outer and 128-byte swizzle, so one box row of
// 64 bf16 is one swizzled 128-byte line, the layout wgmma's 128B-swizzle descriptors read.
// Elements outside the extents arrive as zeros. Returns false if the driver refuses.
inline bool encode_bf16_map_sw128(CUtensorMap* map, const void* base, uint64_t inner,
                                  uint64_t middle, uint64_t outer, uint64_t middle_stride_bytes,
                                  uint64_t outer_stride_bytes, uint32_t box_middle,
                                  uint32_t box_outer) {
  const PFN_cuTensorMapEncodeTiled_v12000 encode = tensor_map_encoder();
  if (encode == nullptr) return false;
  const cuuint64_t dims[3] = {inner, middle, outer};
  const cuuint64_t strides[2] = {middle_stride_bytes, outer_stride_bytes};
  const cuuint32_t box[3] = {64, box_middle, box_outer};
  const cuuint32_t elem_strides[3] = {1, 1, 1};
  return encode(map, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 3, const_cast<void*>(base), dims, strides,
                box, elem_strides, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}

}  // namespace deltainfer::cuda::hopper
