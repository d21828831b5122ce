// Dense decode on the GPU: every layer is Full, which CudaAttention attends with the shared dense
// split-KV kernel; the method adds no workspace and no layer of its own.
#include <memory>

#include "backend/cuda/methods/cuda_decode_method.h"
#include "core/error.h"

namespace deltainfer::cuda::methods {
namespace {

class DenseDecode final : public CudaDecodeMethod {
 public:
  size_t device_bytes() const override { return 0; }
  void decode(const CudaDecodeCall& call, cudaStream_t) override {
    throw_error("dense decode has only Full layers, but layer {} is {}", call.layer,
                attention::layer_role_name(call.role));
  }
};

}  // namespace

CudaDecodeMethodInfo dense() {
  CudaDecodeMethodInfo m;
  m.create = [](const CudaDecodeSetup&) -> std::unique_ptr<CudaDecodeMethod> { return std::make_unique<DenseDecode>(); };
  return m;
}

}  // namespace deltainfer::cuda::methods
