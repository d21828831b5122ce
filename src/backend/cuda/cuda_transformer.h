#pragma once
// The Llama-family forward pass on the GPU: bf16 weights and KV cache, f32 residual stream,
// cuBLASLt GEMMs, our attention kernels, and a CUDA graph per decode step.
#include <memory>

#include "engine/engine.h"
#include "model/transformer.h"

namespace deltainfer::cuda {

// Plans device memory for `capacity` positions, uploads (or, for synthetic models, generates) the
// weights. Throws InputError when the model does not fit the device or the attention policy is
// not available on the GPU.
std::unique_ptr<model::Transformer> make_cuda_transformer(const model::ModelSource& source,
                                                          const engine::EngineConfig& config, int64_t capacity);

}  // namespace deltainfer::cuda
