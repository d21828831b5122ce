#pragma once
// The Llama-family forward pass on the GPU: bf16 weights and KV cache, f32 residual stream,
// cuBLASLt GEMMs, our attention kernels, and a CUDA graph per decode step.
#include <memory>

#include "model/model_source.h"
#include "backend/cuda/rank_collectives.h"
#include "backend/cuda/tensor_parallel.h"
#include "runtime/transformer.h"

namespace deltainfer::cuda {

// Plans device memory for `options.capacity` positions, uploads (or, for synthetic models,
// generates) the weights. Throws InputError when the model does not fit the device or the
// attention policy is not available on the GPU. For now it serves one sequence, its default: the
// batched CUDA forward (several sequences in one pass) is not written yet, and open_sequence()
// says so.
// options.tensor_parallel > 1: the model split over that many GPUs (make_tensor_parallel_transformer).
std::unique_ptr<runtime::Transformer> make_cuda_transformer(const model::ModelSource& source,
                                                          const runtime::BackendOptions& options);

// One rank of a tensor-parallel group: the part of the model model::ShardPlan(rank, world) gives it,
// on the current device, meeting the other ranks through `collectives` (nullptr at world 1).
struct RankContext {
  int rank = 0;
  int world = 1;
  const RankCollectives* collectives = nullptr;
};
std::unique_ptr<runtime::Transformer> make_cuda_rank_transformer(const model::ModelSource& source,
                                                               const runtime::BackendOptions& options,
                                                               const RankContext& rank);

}  // namespace deltainfer::cuda
