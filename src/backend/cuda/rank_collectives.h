#pragma once
// What one tensor-parallel rank needs from the others, as an interface (NcclCommunicators
// implements it over NCCL; builds without NCCL have none). A rank at degree 1 has no collectives
// and makes no calls. Each call enqueues on the rank's stream and is capturable in a CUDA graph;
// every rank must make the same calls in the same order.
//
// The Δ-layers' page selection (kernels/delta_select.cu) is reached through the calling thread's
// current rank (RankScope): each rank runs on its own host thread, and the selection's score
// reduction sits between two kernels of one library call that knows nothing of ranks.
#include <cuda_runtime_api.h>

#include <cstdint>

namespace deltainfer::cuda {

class RankCollectives {
 public:
  virtual ~RankCollectives() = default;
  virtual int world() const = 0;
  // In place over the ranks.
  virtual void sum(int rank, float* data, int64_t count, cudaStream_t stream) const = 0;
  virtual void max(int rank, float* data, int64_t count, cudaStream_t stream) const = 0;
  // Each rank's `count` values into block `rank` of `gathered` ([world][count]).
  virtual void all_gather(int rank, const float* mine, float* gathered, int64_t count, cudaStream_t stream) const = 0;
};

struct CurrentRank {
  const RankCollectives* collectives = nullptr;  // nullptr: degree 1
  int rank = 0;
};

inline CurrentRank& current_rank() {
  thread_local CurrentRank current;
  return current;
}

// Makes `collectives`/`rank` the calling thread's current rank for its lifetime.
class RankScope {
 public:
  RankScope(const RankCollectives* collectives, int rank) : saved_(current_rank()) {
    current_rank() = {collectives, rank};
  }
  ~RankScope() { current_rank() = saved_; }
  RankScope(const RankScope&) = delete;
  RankScope& operator=(const RankScope&) = delete;

 private:
  CurrentRank saved_;
};

}  // namespace deltainfer::cuda
