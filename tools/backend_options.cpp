#include "backend_options.h"

#include <map>
#include <string>

#include "core/error.h"
#include "core/kv_page.h"

#ifdef DELTAINFER_WITH_CUDA
#include "backend/cuda/cuda_transformer.h"
#endif

namespace deltainfer::cli {

void BackendOptions::add_to(CLI::App& command) {
  const std::map<std::string, engine::BackendKind> names{{"cpu", engine::BackendKind::Cpu},
                                                         {"cuda", engine::BackendKind::Cuda}};
  command.add_option("--backend", kind, "Where the model runs: cpu or cuda")
      ->transform(CLI::CheckedTransformer(names, CLI::ignore_case))
      ->capture_default_str();
  const std::map<std::string, KvDtype> dtypes{{"bf16", KvDtype::Bf16}, {"fp8", KvDtype::Fp8E4m3}};
  command.add_option("--kv-dtype", kv_dtype,
                     "KV cache element type on CUDA: bf16, or fp8 (e4m3 with a scale per page and KV head: half "
                     "the bytes)")
      ->transform(CLI::CheckedTransformer(dtypes, CLI::ignore_case))
      ->capture_default_str();
  command.add_option("--tensor-parallel", tensor_parallel,
                     "GPUs one model is split over (CUDA backend): 1, 2, 4 or 8; the degree must divide the "
                     "model's query and KV heads")
      ->check(CLI::IsMember(std::vector<int>{1, 2, 4, 8}))
      ->capture_default_str();
}

void BackendOptions::apply_to(engine::EngineConfig& config) const {
  config.backend = kind;
  config.kv_dtype = kv_dtype;
}

engine::TransformerFactory BackendOptions::factory() const {
  if (tensor_parallel > 1 && kind != engine::BackendKind::Cuda) {
    throw_input_error("--tensor-parallel {} needs --backend cuda", tensor_parallel);
  }
#ifdef DELTAINFER_WITH_CUDA
  return [degree = tensor_parallel](const model::ModelSource& source, const runtime::BackendOptions& options) {
    runtime::BackendOptions split = options;
    split.tensor_parallel = degree;
    return cuda::make_cuda_transformer(source, split);
  };
#else
  return {};
#endif
}

int64_t kv_page_bytes(const model::ModelConfig& model, const BackendOptions& backend) {
  if (backend.kind == engine::BackendKind::Cuda) {
    return int64_t{model.n_layers} * 2 * kv_pool_page_bytes(backend.kv_dtype, model.n_kv_heads, model.head_dim);
  }
  return int64_t{model.n_layers} * 2 * model.n_kv_heads * kKvPageTokens * model.head_dim * 4;  // f32 on the CPU
}

}  // namespace deltainfer::cli
