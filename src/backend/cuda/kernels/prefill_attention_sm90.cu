// Hopper prefill attention (placeholder until the wgmma kernel lands).
#include "backend/cuda/kernels/prefill_attention_launch.cuh"

namespace deltainfer::cuda::prefill {

cudaError_t launch_sm90(const Params& p, int head_dim, int num_pages, cudaStream_t stream) {
  return launch_sm80(p, head_dim, stream) == cudaSuccess && num_pages >= 0
             ? cudaSuccess
             : cudaErrorNotSupported;
}

}  // namespace deltainfer::cuda::prefill
