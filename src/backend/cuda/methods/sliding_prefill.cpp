// Sliding-window prefill on the GPU: sliding_prefill_attention (skips the tiles outside sink and
// window), Δ's correction fused into its epilogue when asked; the chunks of a step's sequences
// through one varlen launch of the same kernel.
#include <memory>

#include "backend/cuda/methods/cuda_prefill_method.h"

namespace deltainfer::cuda::methods {
namespace {

class SlidingPrefill final : public CudaPrefillMethod {
 public:
  explicit SlidingPrefill(const attention::AttentionConfig& config)
      : window_(static_cast<int>(config.window)), sink_(static_cast<int>(config.sink)) {}
  void attend(const PrefillAttentionArgs& chunk, cudaStream_t stream, const DeltaFusion& fused) override {
    sliding_prefill_attention(chunk, window_, sink_, stream, fused);
  }
  // Every chunk in one launch (per kMaxVarlenChunks), Δ fused as in attend().
  void attend_varlen(const VarlenPrefillArgs& batch, const std::vector<VarlenChunk>& chunks,
                     cudaStream_t stream) override {
    VarlenPrefillArgs args = batch;
    args.window = window_;
    args.sink = sink_;
    varlen_prefill_attention(args, chunks, stream);
  }

 private:
  int window_, sink_;
};

}  // namespace

CudaPrefillMethodInfo sliding_prefill() {
  CudaPrefillMethodInfo m;
  m.create = [](const CudaPrefillSetup& setup) -> std::unique_ptr<CudaPrefillMethod> {
    return std::make_unique<SlidingPrefill>(setup.config);
  };
  return m;
}

}  // namespace deltainfer::cuda::methods
