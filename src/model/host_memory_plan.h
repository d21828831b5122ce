#pragma once
// The host memory a model needs on the CPU path, known from its config and tensor table before any
// weight is read: `inspect` prints it, and a model that would not fit can be refused before loading.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

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

struct HostMemoryRequest {
  uint64_t weight_bytes = 0;    // the weights as the backend will hold them (f32_weight_bytes today)
  int64_t kv_positions = 0;     // positions the KV pool holds, all sequences together (CPU: its pages
                                // x runtime::kKvPageTokens)
  int64_t capacity = 0;         // most positions of one sequence: a query's scores span at most these
  int64_t prefill_chunk = 512;  // most tokens of one forward pass
  uint64_t reserve_bytes = uint64_t{256} << 20;  // tokenizer, code, allocator slack
};

struct HostMemoryPlan {
  uint64_t weight_bytes = 0;
  uint64_t kv_bytes = 0;          // f32 K and V of kv_positions, every layer
  uint64_t activation_bytes = 0;  // one forward pass's activations and attention scores, one row of logits
  uint64_t reserve_bytes = 0;
  uint64_t total_bytes = 0;
};

// Pure arithmetic from the config: what the CPU path will allocate for `request`. Throws InputError
// naming `model_path`, every size, the total and `available_bytes` when the total exceeds it. A
// request without positions or chunk is the caller's bug (Error).
HostMemoryPlan plan_host_memory(const ModelConfig& config, const ModelMemory& memory, const HostMemoryRequest& request,
                                uint64_t available_bytes, const std::string& model_path);

// MemAvailable from the text of /proc/meminfo, in bytes; nullopt when the line is missing.
std::optional<uint64_t> parse_mem_available(std::string_view meminfo);
// MemAvailable of this machine now; nullopt where /proc/meminfo cannot be read (not Linux).
std::optional<uint64_t> host_available_bytes();

}  // namespace deltainfer::model
