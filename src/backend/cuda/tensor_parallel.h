#pragma once
// --tensor-parallel N: one model split over N GPUs of a host (docs/notes/tensor-parallel.md).
// One process drives the N GPUs: the scheduler and the server are one process with one KV
// admission view, so the ranks stay inside the backend, one host thread per GPU in lock step, each
// rank a CUDA transformer holding its part of the model (model::ShardPlan) and its own KV pool of
// its KV heads, meeting the others through NCCL (ncclCommInitAll) only in collectives.
//
// Attention methods across ranks: a Δ-layer's page scores (DELTA, Tidal) are reduced over the ranks
// before the selection (kernels/delta_select.cu), so every rank attends the same token set; Quest
// selects pages per KV head from that head's key bounds, and the sparse prefills (sliding,
// block-sparse, vertical-slash, Δ correction) attend per head: those need no exchange.
// CUDA graphs: each rank captures its decode steps with its NCCL calls inside (NCCL supports
// stream capture; the capture is thread-local and the ranks capture the same steps in lock step).
#include <memory>

#include "model/model_source.h"
#include "runtime/transformer.h"

namespace deltainfer::cuda {

// Throws InputError when options.tensor_parallel is not 1, 2, 4 or 8, does not divide the model's
// heads (model::ShardPlan), exceeds the visible GPUs, or the build has no NCCL.
std::unique_ptr<runtime::Transformer> make_tensor_parallel_transformer(const model::ModelSource& source,
                                                                     const runtime::BackendOptions& options);

}  // namespace deltainfer::cuda
