// Vertical-slash prefill on the GPU: VslashEstimator builds each chunk's block lists (LSE of the
// last rows, column/diagonal sums, top-k), block_sparse_prefill_attention attends them, Δ's
// correction fused into its epilogue when asked.
#include <algorithm>
#include <memory>

#include "backend/cuda/methods/cuda_prefill_method.h"
#include "backend/cuda/vslash_estimate.h"
#include "core/error.h"

namespace deltainfer::cuda::methods {
namespace {

VslashParams vslash_params(const attention::PrefillConfig& p, int64_t capacity) {
  auto clamped = [capacity](int64_t value) { return static_cast<int>(std::min(value, capacity)); };
  return VslashParams{clamped(p.estimate_queries), clamped(p.vertical), clamped(p.slash)};
}

class VerticalSlashPrefill final : public CudaPrefillMethod {
 public:
  explicit VerticalSlashPrefill(const CudaPrefillSetup& setup)
      : estimator_(setup.model.n_heads, setup.model.head_dim, setup.max_chunk, setup.capacity,
                   vslash_params(setup.config.prefill, setup.capacity)) {}

  size_t device_bytes() const override { return estimator_.device_bytes(); }
  void prepare(const PrefillAttentionArgs& chunk, cudaStream_t stream) override {
    lists_ = estimator_.build_lists(chunk, stream);
  }
  void attend(const PrefillAttentionArgs& chunk, cudaStream_t stream, const DeltaFusion& fused) override {
    block_sparse_prefill_attention(chunk, lists_, stream, fused);
  }

 private:
  VslashEstimator estimator_;
  BlockSparseLists lists_;  // the current chunk's (prepare)
};

}  // namespace

CudaPrefillMethodInfo vslash_prefill() {
  CudaPrefillMethodInfo m;
  m.create = [](const CudaPrefillSetup& setup) -> std::unique_ptr<CudaPrefillMethod> {
    if (setup.config.prefill.block != kSparseKeyBlock) {
      throw_input_error("--block {}: the CUDA vertical-slash kernel works in key blocks of {}",
                        setup.config.prefill.block, kSparseKeyBlock);
    }
    return std::make_unique<VerticalSlashPrefill>(setup);
  };
  return m;
}

}  // namespace deltainfer::cuda::methods
