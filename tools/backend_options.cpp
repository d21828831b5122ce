#include "backend_options.h"

#include <map>
#include <string>

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

}  // namespace deltainfer::cli
