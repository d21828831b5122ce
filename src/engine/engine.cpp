#include "engine/engine.h"

#include <algorithm>

#include "backend/cpu/cpu_transformer.h"
#include "core/error.h"
#include "core/kv_page.h"
#include "model/host_memory_plan.h"

namespace deltainfer::engine {
namespace {

constexpr int64_t kDefaultContextCap = 8192;

// A synthetic model (random weights, speed measurements only) has no trained context to keep to:
// it runs any context the memory plan admits, so the engine can be timed at 1M tokens.
int64_t resolve_context(const EngineConfig& config, const model::ModelConfig& model, bool synthetic) {
  if (config.context < 0) throw_input_error("context size must be >= 0 (got {})", config.context);
  if (config.context > model.context_length && !synthetic) {
    throw_input_error("context size {} exceeds the model's trained context of {} tokens", config.context,
                      model.context_length);
  }
  return config.context > 0 ? config.context : std::min(model.context_length, kDefaultContextCap);
}

// The CPU path's weights, KV pool and activations against the memory available now: refused with
// every size named before anything is loaded, rather than killed by the kernel halfway.
void check_host_memory(const model::ModelSource& source, const runtime::BackendOptions& options) {
  const std::optional<uint64_t> available = model::host_available_bytes();
  if (!available) return;  // not Linux: nothing to measure against
  const model::ModelMemory memory = model::model_memory(source);
  model::HostMemoryRequest request;
  const bool native = backend::cpu::weight_storage_from_env() == backend::cpu::WeightStorage::Native;
  request.weight_bytes = native && source.gguf() != nullptr ? backend::cpu::native_weight_bytes(*source.gguf())
                                                             : memory.f32_weight_bytes;
  request.capacity = options.capacity;
  request.prefill_chunk = options.prefill_chunk;
  request.kv_positions = runtime::requested_pool_pages(options) * kKvPageTokens;
  model::plan_host_memory(source.config(), memory, request, *available, source.path());
}

}  // namespace

Engine Engine::open(const EngineConfig& config, const TransformerFactory& cuda_factory) {
  Engine engine;
  engine.source_ = model::open_model_source(config.model_path);
  if (!engine.source_->is_synthetic()) {
    engine.tokenizer_ = std::make_unique<tokenizer::Tokenizer>(tokenizer::Tokenizer::load(config.model_path));
  }
  const int64_t capacity = resolve_context(config, engine.source_->config(), engine.source_->is_synthetic());
  config.attention.validate(engine.source_->config().n_layers);
  if (config.kv_pages < 0) throw_input_error("KV pages must be >= 0 (got {})", config.kv_pages);
  runtime::BackendOptions options;
  options.capacity = capacity;
  options.kv_pages = config.kv_pages;
  if (config.max_batch < 1) throw_input_error("the batch must hold at least one sequence (got {})", config.max_batch);
  options.max_batch = config.max_batch;
  options.prefill_chunk = config.prefill_chunk;
  options.threads = config.threads;
  options.kv_dtype = config.kv_dtype;
  options.attention = config.attention;
  if (config.backend == BackendKind::Cuda) {
    if (!cuda_factory) throw_input_error("this build of deltainfer has no CUDA backend (configure with the cuda preset)");
    engine.transformer_ = cuda_factory(*engine.source_, options);
  } else {
    if (config.kv_dtype != KvDtype::Bf16) {
      throw_input_error("--kv-dtype {}: the CPU backend keeps its KV cache in f32; FP8 pages are for --backend cuda",
                        kv_dtype_name(config.kv_dtype));
    }
    check_host_memory(*engine.source_, options);
    engine.transformer_ = std::make_unique<backend::cpu::CpuTransformer>(*engine.source_, options);
  }
  return engine;
}

const tokenizer::Tokenizer& Engine::tokenizer() const {
  if (!tokenizer_) throw_input_error("{} has no tokenizer (synthetic models are for `bench` only)", source_->path());
  return *tokenizer_;
}

GenerationResult Engine::generate(const GenerationRequest& request, const TextCallback& on_text) {
  transformer_->truncate(0);
  return engine::generate(*transformer_, tokenizer(), request, on_text);
}

}  // namespace deltainfer::engine
