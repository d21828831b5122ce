#pragma once
// The cosine statistics of `--fidelity` on the GPU: for two outputs of the same attention rows
// (the method's and dense attention's), the cosine similarity of every (row, head) pair of
// head_dim vectors, folded into a running sum and minimum. The definition is the CPU's
// (attention/fidelity.cpp, CpuAttention::record_prefill), which is the CPU twin the GPU test
// compares against: cosine = dot / sqrt(|a|^2 |b|^2), 1 when both vectors are zero, 0 when only
// one is; sum and min over every pair, starting from the accumulator's values.
//
// Layouts (device pointers):
//   a, b        [pairs][head_dim] bf16 (a chunk's [n][n_heads][head_dim] output is n * n_heads pairs)
//   accumulator [2] f64: {sum of cosines, minimum cosine}; read, updated, written back
//   workspace   kCosineStatsWorkspaceDoubles f64 of scratch for the per-block partials
// Precision: products and sums in f64 (each bf16 product is exact in f64), so a pair's cosine
// matches the CPU twin's to ~1e-15 and the sum only by summation order (~1e-12 relative).
// Deterministic: blocks write partials, one block folds them in a fixed order (no atomics).
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace deltainfer::cuda {

// Most blocks of the partial pass (each grid-strides over the pairs), and its workspace size.
inline constexpr int kCosineStatsMaxBlocks = 1024;
inline constexpr int kCosineStatsWorkspaceDoubles = 2 * kCosineStatsMaxBlocks;

struct CosineStatsArgs {
  const __nv_bfloat16* a = nullptr;
  const __nv_bfloat16* b = nullptr;
  int64_t pairs = 0;  // >= 0; 0 leaves the accumulator as it is
  int head_dim = 0;   // >= 1, any size
  double* accumulator = nullptr;
  double* workspace = nullptr;
};

// Launches on `stream` without synchronizing (two kernels); InputError for bad arguments, Error
// when a launch fails. Capturable.
void accumulate_cosine_stats(const CosineStatsArgs& args, cudaStream_t stream);

}  // namespace deltainfer::cuda
