// Dense prefill on the GPU: prefill_attention (wgmma + TMA) over every key; the chunks of a step's
// sequences through one varlen launch.
#include <memory>

#include "backend/cuda/methods/cuda_prefill_method.h"
#include "core/error.h"

namespace deltainfer::cuda::methods {
namespace {

class DensePrefill final : public CudaPrefillMethod {
 public:
  void attend(const PrefillAttentionArgs& chunk, cudaStream_t stream, const DeltaFusion& fused) override {
    if (fused.dense_rows != nullptr) throw_error("dense prefill has nothing for Δ to correct");
    prefill_attention(chunk, stream);
  }
  // Every chunk in one launch (per kMaxVarlenChunks).
  void attend_varlen(const VarlenPrefillArgs& batch, const std::vector<VarlenChunk>& chunks,
                     cudaStream_t stream) override {
    if (batch.delta_dense != nullptr) throw_error("dense prefill has nothing for Δ to correct");
    VarlenPrefillArgs args = batch;
    args.window = 0;
    varlen_prefill_attention(args, chunks, stream);
  }
};

}  // namespace

CudaPrefillMethodInfo dense_prefill() {
  CudaPrefillMethodInfo m;
  m.create = [](const CudaPrefillSetup&) -> std::unique_ptr<CudaPrefillMethod> {
    return std::make_unique<DensePrefill>();
  };
  return m;
}

}  // namespace deltainfer::cuda::methods
