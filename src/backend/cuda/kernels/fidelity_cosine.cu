// Cosine statistics of --fidelity (fidelity_cosine.h): a partial pass in which each warp takes one
// (row, head) pair at a time (its lanes stride over head_dim, f64 warp sums), each block writes
// its sum and minimum; then one block folds the partials into the accumulator in a fixed order.
// The pass reads 2 * pairs * head_dim bf16 once: it is a small fraction of the dense prefill it
// follows, so it is written for clarity, not for the last bit of bandwidth.
#include <cmath>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/fidelity_cosine.h"
#include "core/error.h"

namespace deltainfer::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr unsigned kFullMask = 0xffffffffu;

__device__ __forceinline__ double warp_sum(double value) {
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) value += __shfl_down_sync(kFullMask, value, offset);
  return value;
}

// The CPU's rule (attention::cosine_similarity): both zero -> 1, one zero -> 0.
__device__ __forceinline__ double cosine_of(double dot, double aa, double bb) {
  if (aa == 0.0 && bb == 0.0) return 1.0;
  if (aa == 0.0 || bb == 0.0) return 0.0;
  return dot / sqrt(aa * bb);
}

__global__ void cosine_partials_kernel(CosineStatsArgs args) {
  __shared__ double sums[kWarps], mins[kWarps];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int64_t first = static_cast<int64_t>(blockIdx.x) * kWarps + warp;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * kWarps;
  double sum = 0.0, minimum = INFINITY;
  for (int64_t pair = first; pair < args.pairs; pair += stride) {
    const __nv_bfloat16* a = args.a + pair * args.head_dim;
    const __nv_bfloat16* b = args.b + pair * args.head_dim;
    double dot = 0.0, aa = 0.0, bb = 0.0;
    for (int e = lane; e < args.head_dim; e += 32) {
      const double x = __bfloat162float(a[e]), y = __bfloat162float(b[e]);
      dot += x * y;
      aa += x * x;
      bb += y * y;
    }
    dot = warp_sum(dot);
    aa = warp_sum(aa);
    bb = warp_sum(bb);
    if (lane == 0) {
      const double cosine = cosine_of(dot, aa, bb);
      sum += cosine;
      minimum = fmin(minimum, cosine);
    }
  }
  if (lane == 0) {
    sums[warp] = sum;
    mins[warp] = minimum;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int w = 1; w < kWarps; ++w) {
      sum += sums[w];
      minimum = fmin(minimum, mins[w]);
    }
    args.workspace[2 * blockIdx.x] = sum;
    args.workspace[2 * blockIdx.x + 1] = minimum;
  }
}

__global__ void fold_partials_kernel(const double* partials, int blocks, double* accumulator) {
  __shared__ double sums[kThreads], mins[kThreads];
  double sum = 0.0, minimum = INFINITY;
  for (int i = threadIdx.x; i < blocks; i += kThreads) {
    sum += partials[2 * i];
    minimum = fmin(minimum, partials[2 * i + 1]);
  }
  sums[threadIdx.x] = sum;
  mins[threadIdx.x] = minimum;
  __syncthreads();
  for (int half = kThreads / 2; half > 0; half /= 2) {
    if (threadIdx.x < half) {
      sums[threadIdx.x] += sums[threadIdx.x + half];
      mins[threadIdx.x] = fmin(mins[threadIdx.x], mins[threadIdx.x + half]);
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    accumulator[0] += sums[0];
    accumulator[1] = fmin(accumulator[1], mins[0]);
  }
}

}  // namespace

void accumulate_cosine_stats(const CosineStatsArgs& args, cudaStream_t stream) {
  if (args.pairs < 0 || args.head_dim < 1) {
    throw_input_error("accumulate_cosine_stats: {} pairs of head dim {}", args.pairs, args.head_dim);
  }
  if (args.pairs == 0) return;
  if (args.a == nullptr || args.b == nullptr || args.accumulator == nullptr || args.workspace == nullptr) {
    throw_input_error("accumulate_cosine_stats: a null pointer");
  }
  const int64_t wanted = (args.pairs + kWarps - 1) / kWarps;
  const int blocks = static_cast<int>(wanted < kCosineStatsMaxBlocks ? wanted : kCosineStatsMaxBlocks);
  cosine_partials_kernel<<<blocks, kThreads, 0, stream>>>(args);
  CUDA_CHECK_LAUNCH();
  fold_partials_kernel<<<1, kThreads, 0, stream>>>(args.workspace, blocks, args.accumulator);
  CUDA_CHECK_LAUNCH();
}

}  // namespace deltainfer::cuda
