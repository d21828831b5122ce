#pragma once
// Checks for CUDA runtime and cuBLASLt calls. A failed call throws deltainfer::Error naming the
// call, the file:line and the library's own error string; nothing here synchronizes, so the
// checks are safe inside CUDA-graph capture.
//
//   CUDA_CHECK(cudaMalloc(&p, bytes));
//   kernel<<<grid, block, 0, stream>>>(...);
//   CUDA_CHECK_LAUNCH();                     // catches bad launch configurations
//   CUBLAS_CHECK(cublasLtMatmul(...));
#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include "core/error.h"

namespace deltainfer::cuda {

[[noreturn]] inline void throw_cuda_error(cudaError_t status, const char* call, const char* file,
                                          int line) {
  throw_error("{}:{}: CUDA error {} ({}) in {}", file, line, cudaGetErrorName(status),
              cudaGetErrorString(status), call);
}

[[noreturn]] inline void throw_cublas_error(cublasStatus_t status, const char* call,
                                            const char* file, int line) {
  throw_error("{}:{}: cuBLAS error {} ({}) in {}", file, line, cublasLtGetStatusName(status),
              cublasLtGetStatusString(status), call);
}

inline void check_cuda(cudaError_t status, const char* call, const char* file, int line) {
  if (status != cudaSuccess) {
    throw_cuda_error(status, call, file, line);
  }
}

inline void check_cublas(cublasStatus_t status, const char* call, const char* file, int line) {
  if (status != CUBLAS_STATUS_SUCCESS) {
    throw_cublas_error(status, call, file, line);
  }
}

}  // namespace deltainfer::cuda

#define CUDA_CHECK(call) ::deltainfer::cuda::check_cuda((call), #call, __FILE__, __LINE__)
#define CUBLAS_CHECK(call) ::deltainfer::cuda::check_cublas((call), #call, __FILE__, __LINE__)
// After a kernel launch: reports launch errors (bad grid, too much shared memory) without a sync.
#define CUDA_CHECK_LAUNCH() \
  ::deltainfer::cuda::check_cuda(cudaGetLastError(), "kernel launch", __FILE__, __LINE__)
