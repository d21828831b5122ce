#include "backend_options.h"

#include <map>
#include <string>

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
}

engine::TransformerFactory BackendOptions::factory() const {
#ifdef DELTAINFER_WITH_CUDA
  return cuda::make_cuda_transformer;
#else
  return {};
#endif
}

int64_t kv_page_bytes(const model::ModelConfig& model, engine::BackendKind backend) {
  const int64_t element = backend == engine::BackendKind::Cuda ? 2 : 4;
  return int64_t{model.n_layers} * 2 * model.n_kv_heads * kKvPageTokens * model.head_dim * element;
}

}  // namespace deltainfer::cli
