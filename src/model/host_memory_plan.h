#pragma once
// The host memory a model needs on the CPU path, known from its config and tensor table before any
// weight is read: `inspect` prints it, and a model that would not fit can be refused before loading.
#include <cstdint>
#include <optional>

#include "model/model_source.h"

namespace deltainfer::model {

struct ModelMemory {
  // The weights in their stored type: the sum of the GGUF file's tensor sizes (nullopt for a
  // source that is not one GGUF file).
  std::optional<uint64_t> stored_weight_bytes;
  // The canonical tensors (model_source.h) in f32, as the CPU backend holds them today.
  uint64_t f32_weight_bytes = 0;
  // The CPU KV cache's share of one token: f32 K and V over every layer.
  uint64_t kv_bytes_per_token = 0;

  uint64_t kv_cache_bytes(int64_t tokens) const { return kv_bytes_per_token * static_cast<uint64_t>(tokens); }
};

// Reads only the config and the tensor table.
ModelMemory model_memory(const ModelSource& source);

}  // namespace deltainfer::model
