// StreamingLLM decode on the GPU: at layer 0 of each step every sequence's set becomes its sink +
// window (streaming_select), which every layer then attends with sparse decode.
#include <memory>

#include "backend/cuda/methods/shared_set_decode.h"

namespace deltainfer::cuda::methods {
namespace {

class StreamingDecode final : public SharedSetDecode {
 public:
  explicit StreamingDecode(const CudaDecodeSetup& setup)
      : SharedSetDecode(setup, delta_select_config(setup.config.decode, setup.config.decode.recency),
                        static_cast<int>(setup.config.sink + setup.config.window), /*delta_select=*/false),
        sink_(static_cast<int>(setup.config.sink)),
        window_(static_cast<int>(setup.config.window)) {}

  void decode(const CudaDecodeCall& call, cudaStream_t stream) override {
    if (call.layer == 0) streaming_select(call.kv_lens, call.batch, sink_, window_, set(), stream);
    SharedSetDecode::decode(call, stream);
  }

 private:
  int sink_, window_;
};

}  // namespace

CudaDecodeMethodInfo streaming() {
  CudaDecodeMethodInfo m;
  m.create = [](const CudaDecodeSetup& setup) -> std::unique_ptr<CudaDecodeMethod> {
    return std::make_unique<StreamingDecode>(setup);
  };
  return m;
}

}  // namespace deltainfer::cuda::methods
