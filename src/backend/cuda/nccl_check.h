#pragma once
// Checks NCCL calls like CUDA_CHECK checks CUDA's: a failed call throws deltainfer::Error naming the
// call, the file:line and NCCL's own error text (ncclGetErrorString). Nothing here synchronizes,
// so it is safe inside CUDA-graph capture. Only in builds with NCCL (DELTAINFER_NCCL).
//
//   NCCL_CHECK(ncclAllReduce(buf, buf, n, ncclFloat32, ncclSum, comm, stream));
#include <nccl.h>

#include "core/error.h"

namespace deltainfer::cuda {

inline void check_nccl(ncclResult_t status, const char* call, const char* file, int line) {
  if (status != ncclSuccess) {
    throw_error("{}:{}: NCCL error {} ({}) in {}", file, line, static_cast<int>(status), ncclGetErrorString(status),
                call);
  }
}

}  // namespace deltainfer::cuda

#define NCCL_CHECK(call) ::deltainfer::cuda::check_nccl((call), #call, __FILE__, __LINE__)
