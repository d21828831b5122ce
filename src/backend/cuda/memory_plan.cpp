#include "backend/cuda/memory_plan.h"

#include <cuda_runtime_api.h>

#include <fmt/format.h>

#include <algorithm>
#include <string>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/decode_attention.h"
#include "backend/cuda/delta_decode.h"
#include "core/error.h"
#include "model/model_source.h"

namespace deltainfer::cuda {
namespace {

constexpr size_t kBf16 = 2;
constexpr size_t kF32 = 4;
constexpr size_t kGemmWorkspace = size_t{32} << 20;
constexpr int kMaxDecodeSplits = 256;  // the decode kernel's cap, bounds its workspace

double gib(size_t bytes) { return static_cast<double>(bytes) / static_cast<double>(size_t{1} << 30); }

// Every tensor of the architecture's table in bf16.
size_t weight_bytes(const model::ModelConfig& c) {
  size_t elements = 0;
  for (const auto& [name, shape] : model::expected_tensor_shapes(c)) {
    size_t count = 1;
    for (int64_t dim : shape) count *= static_cast<size_t>(dim);
    elements += count;
  }
  return elements * kBf16;
}

size_t workspace_bytes(const model::ModelConfig& c, const MemoryRequest& r) {
  const size_t tokens = static_cast<size_t>(std::max(r.prefill_chunk, r.max_batch));
  const size_t d = static_cast<size_t>(c.d_model);
  const size_t qkv = static_cast<size_t>(c.q_dim() + 2 * c.kv_dim());
  const size_t residual = tokens * d * kF32;
  const size_t normed = tokens * d * kBf16;
  const size_t projections = tokens * (qkv + static_cast<size_t>(c.q_dim())) * kBf16;  // q|k|v and rotated q
  const size_t attention_out = tokens * static_cast<size_t>(c.q_dim()) * kBf16;
  const size_t mlp = tokens * 3 * static_cast<size_t>(c.ffn_dim) * kBf16;  // gate|up and the product
  const size_t logit_rows = static_cast<size_t>(logit_buffer_rows(static_cast<int64_t>(tokens), r.max_batch));
  const size_t rank_logit_columns = r.world > 1 ? static_cast<size_t>(r.rank_vocab_columns) * (1 + static_cast<size_t>(r.world)) : 0;
  const size_t logits = logit_rows * (static_cast<size_t>(c.vocab_size) + rank_logit_columns) * kF32;
  const size_t decode = static_cast<size_t>(r.max_batch) * static_cast<size_t>(c.n_heads) * kMaxDecodeSplits *
                        (static_cast<size_t>(c.head_dim) + 1) * kF32;
  const size_t lse = tokens * static_cast<size_t>(c.n_heads) * kF32;
  const size_t token_nlls = tokens * (sizeof(int32_t) + sizeof(double));  // LogitsFor::TokenNlls: target and NLL per row
  return residual + normed + projections + attention_out + mlp + logits + decode + lse + token_nlls + kGemmWorkspace;
}

// FP8 cache: what prefill and the append need beside the pools (MemoryPlan::kv_staging_bytes).
size_t fp8_staging_bytes(const model::ModelConfig& c, const MemoryRequest& r, int64_t pages_per_sequence) {
  if (r.kv_dtype != KvDtype::Fp8E4m3) return 0;
  const size_t page_values = static_cast<size_t>(c.n_kv_heads) * kKvPageSize * static_cast<size_t>(c.head_dim);
  const size_t pages = static_cast<size_t>(pages_per_sequence);
  const size_t tokens = static_cast<size_t>(std::max(r.prefill_chunk, r.max_batch));
  return 2 * pages * page_values * kBf16 + pages * sizeof(int32_t) +
         2 * tokens * static_cast<size_t>(c.kv_dim()) * kBf16;
}

}  // namespace

MemoryPlan plan_memory(const model::ModelConfig& config, const MemoryRequest& request, size_t free_bytes) {
  if (request.max_context <= 0 || request.max_batch <= 0 || request.prefill_chunk <= 0) {
    throw_input_error("memory plan: max_context {}, max_batch {}, prefill_chunk {} must all be positive",
                      request.max_context, request.max_batch, request.prefill_chunk);
  }
  MemoryPlan plan;
  plan.pages_per_sequence = (request.max_context + kKvPageSize - 1) / kKvPageSize;
  plan.num_pages = request.kv_pages > 0 ? request.kv_pages : plan.pages_per_sequence * request.max_batch;
  plan.kv_bytes_per_page = 2 * static_cast<size_t>(config.n_layers) *
                           static_cast<size_t>(kv_pool_page_bytes(request.kv_dtype, config.n_kv_heads, config.head_dim));
  plan.kv_bytes_per_token = (plan.kv_bytes_per_page + kKvPageSize - 1) / kKvPageSize;
  plan.kv_bytes = static_cast<size_t>(plan.num_pages) * plan.kv_bytes_per_page;
  plan.page_state_bytes_per_token = request.page_state_bytes_per_page / kKvPageSize;
  plan.page_state_bytes = static_cast<size_t>(plan.num_pages) * request.page_state_bytes_per_page;
  plan.weight_bytes = weight_bytes(config);
  plan.workspace_bytes = workspace_bytes(config, request);
  plan.kv_staging_bytes = fp8_staging_bytes(config, request, plan.pages_per_sequence);
  plan.attention_bytes = request.attention_bytes;
  plan.total_bytes = plan.weight_bytes + plan.kv_bytes + plan.page_state_bytes + plan.workspace_bytes +
                     plan.kv_staging_bytes + plan.attention_bytes;
  if (plan.total_bytes + request.reserve_bytes > free_bytes) {
    const size_t other = plan.total_bytes - plan.kv_bytes - plan.page_state_bytes + request.reserve_bytes;  // not per token
    const size_t per_token = plan.kv_bytes_per_token + plan.page_state_bytes_per_token;
    const int64_t fit_tokens =
        free_bytes > other ? static_cast<int64_t>((free_bytes - other) / per_token / request.max_batch) : 0;
    std::string page_state = plan.page_state_bytes > 0
                                 ? fmt::format(" + method page state {:.2f} GiB", gib(plan.page_state_bytes))
                                 : std::string();
    if (plan.kv_staging_bytes > 0) page_state += fmt::format(" + FP8 staging {:.2f} GiB", gib(plan.kv_staging_bytes));
    throw_input_error(
        "{}: {} sequence(s) of {} tokens do not fit in GPU memory: weights {:.2f} GiB + KV cache {:.2f} GiB "
        "({}, {:.2f} KiB/token){} + workspaces {:.2f} GiB + attention workspaces {:.2f} GiB + reserve {:.2f} GiB = {:.2f} "
        "GiB, but {:.2f} GiB is free; "
        "at most about {} tokens per sequence fit (lower --max-context or the batch)",
        config.name, request.max_batch, request.max_context, gib(plan.weight_bytes), gib(plan.kv_bytes),
        kv_dtype_name(request.kv_dtype), static_cast<double>(plan.kv_bytes_per_page) / kKvPageSize / 1024, page_state, gib(plan.workspace_bytes), gib(plan.attention_bytes),
        gib(request.reserve_bytes),
        gib(plan.total_bytes + request.reserve_bytes), gib(free_bytes), fit_tokens);
  }
  return plan;
}

size_t free_device_bytes() {
  size_t free_bytes = 0, total_bytes = 0;
  CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
  return free_bytes;
}

}  // namespace deltainfer::cuda
