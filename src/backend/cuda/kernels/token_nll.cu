// token_nll (backend/cuda/token_nll.h): one block per row, two passes over the row (the max, then
// the sum of exponentials), reductions in a fixed order. Memory-bound: two reads of the logits the
// output projection just wrote, small beside that GEMM (it reads d_model values per logit).
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/token_nll.h"
#include "core/error.h"

namespace deltainfer::cuda {
namespace {

constexpr int kWarps = kTokenNllThreads / 32;
static_assert(kTokenNllThreads % 32 == 0, "whole warps");

// The block's max (NaN skipped by fmaxf), on every thread. -inf, not -FLT_MAX, is the identity: a
// row of -inf logits must keep m = -inf, as the host formula does.
__device__ float block_max(float v, float* scratch) {
  for (int offset = 16; offset > 0; offset /= 2) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  if (threadIdx.x % 32 == 0) scratch[threadIdx.x / 32] = v;
  __syncthreads();
  float result = -INFINITY;
  for (int w = 0; w < kWarps; ++w) result = fmaxf(result, scratch[w]);
  return result;
}

// The block's sum, on thread 0, in a fixed order: a shuffle tree per warp, then warp 0's lane 0
// adds the warps' sums in warp order.
__device__ double block_sum(double v, double* scratch) {
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
  if (threadIdx.x % 32 == 0) scratch[threadIdx.x / 32] = v;
  __syncthreads();
  double total = 0.0;
  if (threadIdx.x == 0) {
    for (int w = 0; w < kWarps; ++w) total += scratch[w];
  }
  return total;
}

__global__ void __launch_bounds__(kTokenNllThreads)
    token_nll_kernel(const float* logits, int vocab, const int32_t* targets, double* nlls) {
  __shared__ float max_scratch[kWarps];
  __shared__ double sum_scratch[kWarps];
  const float* row = logits + static_cast<size_t>(blockIdx.x) * static_cast<size_t>(vocab);
  float m = -INFINITY;
  for (int v = static_cast<int>(threadIdx.x); v < vocab; v += kTokenNllThreads) m = fmaxf(m, row[v]);
  m = block_max(m, max_scratch);
  double s = 0.0;
  for (int v = static_cast<int>(threadIdx.x); v < vocab; v += kTokenNllThreads) {
    s += static_cast<double>(expf(row[v] - m));
  }
  s = block_sum(s, sum_scratch);
  if (threadIdx.x == 0) {
    const int32_t target = targets[blockIdx.x];
    nlls[blockIdx.x] = target < 0 || target >= vocab
                           ? static_cast<double>(NAN)
                           : log(s) + static_cast<double>(m) - static_cast<double>(row[target]);
  }
}

}  // namespace

void token_nll(const float* logits, int rows, int vocab, const int32_t* targets, double* nlls, cudaStream_t stream) {
  if (rows < 0 || vocab < 1) throw_error("token_nll: {} rows of {} logits", rows, vocab);
  if (rows == 0) return;
  token_nll_kernel<<<rows, kTokenNllThreads, 0, stream>>>(logits, vocab, targets, nlls);
  CUDA_CHECK_LAUNCH();
}

}  // namespace deltainfer::cuda
