#pragma once
// One NCCL communicator per GPU of a tensor-parallel group driven by this one process
// (ncclCommInitAll over devices 0..world-1): the scheduler and the server are one process, so one
// host thread per GPU issues each rank's work and the ranks meet only in these collectives.
// NVLink multicast (NVLS) stays off: NCCL_NVLS_ENABLE is set to 0 unless the caller set it, and
// nothing here creates multicast objects (the device machines' rules forbid them).
#include <cuda_runtime_api.h>
#include <nccl.h>

#include <cstdint>
#include <vector>

#include "backend/cuda/rank_collectives.h"

namespace deltainfer::cuda {

class NcclCommunicators final : public RankCollectives {
 public:
  // Throws InputError when fewer than `world` GPUs are visible.
  explicit NcclCommunicators(int world);
  ~NcclCommunicators();
  NcclCommunicators(const NcclCommunicators&) = delete;
  NcclCommunicators& operator=(const NcclCommunicators&) = delete;

  int world() const override { return static_cast<int>(comms_.size()); }
  ncclComm_t comm(int rank) const { return comms_.at(static_cast<size_t>(rank)); }

  // On `rank`'s stream (the caller's thread has that rank's device current); see RankCollectives.
  void sum(int rank, float* data, int64_t count, cudaStream_t stream) const override;
  void max(int rank, float* data, int64_t count, cudaStream_t stream) const override;
  void all_gather(int rank, const float* mine, float* gathered, int64_t count, cudaStream_t stream) const override;

 private:
  std::vector<ncclComm_t> comms_;
};

// Sets NCCL_NVLS_ENABLE=0 unless already set (called before any communicator exists).
void keep_nvlink_multicast_off();

}  // namespace deltainfer::cuda
