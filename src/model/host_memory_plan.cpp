#include "model/host_memory_plan.h"

#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "io/gguf.h"
#include "model/model_source_impl.h"

namespace deltainfer::model {
namespace {

uint64_t element_count(const std::vector<int64_t>& shape) {
  uint64_t n = 1;
  for (int64_t dim : shape) n *= static_cast<uint64_t>(dim);
  return n;
}

double gib(uint64_t bytes) { return static_cast<double>(bytes) / static_cast<double>(uint64_t{1} << 30); }

// What the CPU forward pass holds for a pass of n tokens: the residual stream, the normed input,
// q/k/v, the attention output and projection, the FFN's gate and up (CpuTransformer's scratch);
// attention scores of n query rows against a whole sequence (an upper bound: the kernels' per-thread
// scratch holds one query block each); and one row of logits.
uint64_t activation_bytes(const ModelConfig& c, int64_t tokens, int64_t capacity) {
  const auto n = static_cast<uint64_t>(tokens);
  const auto per_token = static_cast<uint64_t>(3 * c.d_model + 2 * c.q_dim() + 2 * c.kv_dim() + 2 * c.ffn_dim);
  return (n * per_token + n * static_cast<uint64_t>(capacity) + static_cast<uint64_t>(c.vocab_size)) * sizeof(float);
}

}  // namespace

ModelMemory model_memory(const ModelSource& source) {
  const ModelConfig& config = source.config();
  ModelMemory memory;
  for (const auto& [name, shape] : expected_tensor_shapes(config)) {
    memory.f32_weight_bytes += element_count(shape) * sizeof(float);
  }
  if (const io::GgufFile* file = source.gguf()) {
    uint64_t stored = 0;
    for (const io::GgufTensorInfo& tensor : file->tensors()) stored += tensor.n_bytes;
    memory.stored_weight_bytes = stored;
  }
  memory.kv_bytes_per_token =
      2 * static_cast<uint64_t>(config.n_layers) * static_cast<uint64_t>(config.kv_dim()) * sizeof(float);
  return memory;
}

HostMemoryPlan plan_host_memory(const ModelConfig& config, const ModelMemory& memory, const HostMemoryRequest& request,
                                uint64_t available_bytes, const std::string& model_path) {
  if (request.kv_positions <= 0 || request.capacity <= 0 || request.prefill_chunk <= 0) {
    throw_error("host memory request without positions: kv {}, capacity {}, chunk {}", request.kv_positions,
                request.capacity, request.prefill_chunk);
  }
  HostMemoryPlan plan;
  plan.weight_bytes = request.weight_bytes;
  plan.kv_bytes = memory.kv_cache_bytes(request.kv_positions);
  plan.activation_bytes =
      activation_bytes(config, std::min(request.prefill_chunk, request.capacity), request.capacity);
  plan.reserve_bytes = request.reserve_bytes;
  plan.total_bytes = plan.weight_bytes + plan.kv_bytes + plan.activation_bytes + plan.reserve_bytes;
  if (plan.total_bytes > available_bytes) {
    // Only a smaller cache helps when the weights fit on their own.
    const bool weights_fit = plan.weight_bytes + plan.activation_bytes + plan.reserve_bytes < available_bytes;
    throw_input_error(
        "{}: does not fit in memory: weights {:.2f} GiB + KV cache {:.2f} GiB ({} positions) + activations {:.2f} GiB "
        "+ reserve {:.2f} GiB = {:.2f} GiB needed, but {:.2f} GiB is available; {}",
        model_path, gib(plan.weight_bytes), gib(plan.kv_bytes), request.kv_positions, gib(plan.activation_bytes),
        gib(plan.reserve_bytes), gib(plan.total_bytes), gib(available_bytes),
        weights_fit ? "try a smaller --ctx-size (or fewer KV pages)"
                    : "the weights alone do not fit this machine's memory on the CPU path (f32 weights)");
  }
  return plan;
}

std::optional<uint64_t> parse_mem_available(std::string_view meminfo) {
  std::istringstream lines{std::string(meminfo)};
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream fields(line);
    std::string key;
    uint64_t kib = 0;
    std::string unit;
    if (fields >> key >> kib >> unit && key == "MemAvailable:" && unit == "kB") return kib * 1024;
  }
  return std::nullopt;
}

std::optional<uint64_t> host_available_bytes() {
  std::ifstream in("/proc/meminfo");
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  return parse_mem_available(text.str());
}

}  // namespace deltainfer::model
