#pragma once
// Launchers of the prefill attention kernels; prefill_attention.cu validates and picks one.
#include <cuda_runtime.h>

#include "backend/cuda/kernels/prefill_attention_common.cuh"

namespace deltainfer::cuda::prefill {

// FlashAttention-2 style: mma.sync m16n8k16, ldmatrix, cp.async double buffering (any sm_80+).
cudaError_t launch_sm80(const Params& p, int head_dim, cudaStream_t stream);

// Hopper: wgmma + TMA, warp-specialized producer and two consumer warpgroups (sm_90a).
cudaError_t launch_sm90(const Params& p, int head_dim, int num_pages, cudaStream_t stream);

}  // namespace deltainfer::cuda::prefill
