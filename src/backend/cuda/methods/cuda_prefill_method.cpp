// The default varlen path of a prefill method: its single-sequence calls, one chunk after the
// other (they share the method's per-chunk workspaces, so they must not overlap).
#include "backend/cuda/methods/cuda_prefill_method.h"

namespace deltainfer::cuda {

void CudaPrefillMethod::attend_each(const VarlenPrefillArgs& batch, const std::vector<VarlenChunk>& chunks,
                                    cudaStream_t stream) {
  const int64_t row_elems = int64_t{batch.n_heads} * batch.kv.head_dim;
  for (const VarlenChunk& c : chunks) {
    if (c.n_q == 0) continue;
    const PrefillAttentionArgs chunk = varlen_chunk_args(batch, c);
    DeltaFusion fused;
    if (batch.delta_dense != nullptr) {
      fused.dense_rows = batch.delta_dense + c.delta_row * row_elems;
      fused.gamma = batch.gamma;
    }
    prepare(chunk, stream);
    attend(chunk, stream, fused);
  }
}

}  // namespace deltainfer::cuda
