#pragma once
// The Llama-family forward pass on the GPU: bf16 weights and KV cache, f32 residual stream,
// cuBLASLt GEMMs, our attention kernels, and a CUDA graph per decode step.
#include <memory>

#include "model/model_source.h"
#include "runtime/transformer.h"

namespace deltainfer::cuda {

// Plans device memory for `options.capacity` positions, uploads (or, for synthetic models,
// generates) the weights. Throws InputError when the model does not fit the device or the
// attention policy is not available on the GPU. For now it serves one sequence, its default: the
// batched CUDA forward (several sequences in one pass) is not written yet, and open_sequence()
// says so.
std::unique_ptr<runtime::Transformer> make_cuda_transformer(const model::ModelSource& source,
                                                          const runtime::BackendOptions& options);

}  // namespace deltainfer::cuda
