#include "backend/cuda/nccl_communicators.h"

#include <cstdlib>
#include <numeric>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/nccl_check.h"
#include "core/error.h"

namespace deltainfer::cuda {

void keep_nvlink_multicast_off() { setenv("NCCL_NVLS_ENABLE", "0", /*overwrite=*/0); }

NcclCommunicators::NcclCommunicators(int world) {
  int devices = 0;
  CUDA_CHECK(cudaGetDeviceCount(&devices));
  if (world < 1 || world > devices) {
    throw_input_error("--tensor-parallel {} needs {} GPUs; {} are visible", world, world, devices);
  }
  keep_nvlink_multicast_off();
  std::vector<int> device_ids(static_cast<size_t>(world));
  std::iota(device_ids.begin(), device_ids.end(), 0);
  comms_.resize(static_cast<size_t>(world));
  NCCL_CHECK(ncclCommInitAll(comms_.data(), world, device_ids.data()));
}

NcclCommunicators::~NcclCommunicators() {
  for (ncclComm_t comm : comms_) {
    if (comm != nullptr) ncclCommDestroy(comm);  // no throw from a destructor
  }
}

void NcclCommunicators::sum(int rank, float* data, int64_t count, cudaStream_t stream) const {
  NCCL_CHECK(ncclAllReduce(data, data, static_cast<size_t>(count), ncclFloat32, ncclSum, comm(rank), stream));
}

void NcclCommunicators::max(int rank, float* data, int64_t count, cudaStream_t stream) const {
  NCCL_CHECK(ncclAllReduce(data, data, static_cast<size_t>(count), ncclFloat32, ncclMax, comm(rank), stream));
}

void NcclCommunicators::all_gather(int rank, const float* mine, float* gathered, int64_t count,
                                   cudaStream_t stream) const {
  NCCL_CHECK(ncclAllGather(mine, gathered, static_cast<size_t>(count), ncclFloat32, comm(rank), stream));
}

}  // namespace deltainfer::cuda
