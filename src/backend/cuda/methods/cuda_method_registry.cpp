#include "backend/cuda/methods/cuda_decode_method.h"
#include "backend/cuda/methods/cuda_prefill_method.h"

#include "core/error.h"

namespace deltainfer::cuda {
namespace {

// The .def file's kind over the method's own row.
template <typename Kind, typename Info>
Info registered(Kind kind, Info method) {
  method.kind = kind;
  return method;
}

}  // namespace

const std::vector<CudaDecodeMethodInfo>& cuda_decode_methods() {
  static const std::vector<CudaDecodeMethodInfo> rows = {
#define DELTAINFER_DECODE_METHOD(kind, name) registered(attention::DecodeKind::kind, methods::name()),
#include "attention/methods/decode_methods.def"
#undef DELTAINFER_DECODE_METHOD
  };
  return rows;
}

const CudaDecodeMethodInfo& cuda_decode_method(attention::DecodeKind kind) {
  for (const CudaDecodeMethodInfo& method : cuda_decode_methods()) {
    if (method.kind == kind) return method;
  }
  throw_error("decode kind {} has no CUDA implementation", static_cast<int>(kind));
}

const std::vector<CudaPrefillMethodInfo>& cuda_prefill_methods() {
  static const std::vector<CudaPrefillMethodInfo> rows = {
#define DELTAINFER_PREFILL_METHOD(kind, name) registered(attention::PrefillKind::kind, methods::name##_prefill()),
#include "attention/methods/prefill_methods.def"
#undef DELTAINFER_PREFILL_METHOD
  };
  return rows;
}

const CudaPrefillMethodInfo& cuda_prefill_method(attention::PrefillKind kind) {
  for (const CudaPrefillMethodInfo& method : cuda_prefill_methods()) {
    if (method.kind == kind) return method;
  }
  throw_error("prefill kind {} has no CUDA implementation", static_cast<int>(kind));
}

bool keeps_page_state(const attention::DecodeConfig& decode, const attention::LayerSchedule& schedule, int layer) {
  return cuda_decode_method(decode.kind).create_page_state != nullptr &&
         schedule.role(layer) == attention::LayerRole::Sparse;
}

size_t page_state_bytes_per_page(const attention::DecodeConfig& decode, const model::ModelConfig& model) {
  const CudaDecodeMethodInfo& method = cuda_decode_method(decode.kind);
  if (method.page_state_bytes == nullptr) return 0;
  const attention::LayerSchedule schedule(decode, model.n_layers);
  size_t layers = 0;
  for (int layer = 0; layer < model.n_layers; ++layer) layers += keeps_page_state(decode, schedule, layer) ? 1 : 0;
  return layers * method.page_state_bytes(model);
}

}  // namespace deltainfer::cuda
