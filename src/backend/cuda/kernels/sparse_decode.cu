// Sparse decode: the split-KV decode kernels (decode_split.cuh) in gather mode, where a split
// runs over entries of a token set and each row's K/V is fetched from the paged cache by its
// position. Sets are small (a few thousand tokens), so splits are shorter than in dense decode
// (64 rows) to put a block on every multiprocessor.
#include <cuda_bf16.h>

#include <algorithm>
#include <cstdint>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/delta_decode.h"
#include "backend/cuda/kernels/decode_split.cuh"
#include "core/error.h"

namespace deltainfer::cuda {
namespace {

constexpr int kSparseMinRowsPerSplit = 64;

}  // namespace

SparseDecodePlan plan_sparse_decode(int batch, int n_heads, int n_kv_heads, int head_dim, int capacity,
                                    int sets_per_seq, int sm_count, int num_splits) {
  split_kv::validate_shape("sparse_decode", batch, n_heads, n_kv_heads, head_dim, capacity);
  if (sets_per_seq != 1 && sets_per_seq != n_kv_heads) {
    throw_input_error("sparse_decode: {} token sets per sequence; need 1 or n_kv_heads ({})", sets_per_seq,
                      n_kv_heads);
  }
  SparseDecodePlan plan;
  plan.num_splits = split_kv::plan_splits(batch * n_kv_heads, head_dim, n_heads / n_kv_heads, capacity,
                                          kSparseMinRowsPerSplit, sm_count, num_splits);
  plan.workspace_bytes = split_kv::workspace_bytes(batch, n_heads, head_dim, plan.num_splits);
  return plan;
}

void sparse_decode(const SparseDecodeArgs& args, cudaStream_t stream) {
  const PagedKv& kv = args.kv;
  validate_paged_kv("sparse_decode", kv, PagedKvReads{true, false});
  const SparseDecodePlan plan =
      plan_sparse_decode(kv.batch, args.n_heads, kv.n_kv_heads, kv.head_dim, args.set.capacity,
                         args.set.sets_per_seq, current_device_sm_count(), args.num_splits);
  const bool clustered = args.merge == SplitMerge::kCluster ||
                         (args.merge == SplitMerge::kAuto && args.set.capacity <= kClusterMergeMaxSet);
  if (!clustered && (args.workspace == nullptr || args.workspace_bytes < plan.workspace_bytes)) {
    throw_input_error("sparse_decode: workspace of {} bytes, {} needed", args.workspace_bytes, plan.workspace_bytes);
  }
  if (args.q == nullptr || args.set.indices == nullptr || args.set.counts == nullptr || args.out == nullptr) {
    throw_input_error("sparse_decode: q, out or a token set pointer is null");
  }
  split_kv::SplitParams p{};
  split_kv::point_at_cache(p, kv);
  p.q = args.q;
  p.kv_lens = args.set.counts;
  p.token_index = args.set.indices;
  p.index_stride = args.set.capacity;
  p.sets_per_seq = args.set.sets_per_seq;
  p.n_heads = args.n_heads;
  p.group = args.n_heads / kv.n_kv_heads;
  p.num_splits = plan.num_splits;
  p.scale_log2 = args.softmax_scale * split_kv::kLog2e;
  if (clustered) {
    p.num_splits = std::min(plan.num_splits, split_kv::kMaxClusterSplits);
    p.out = args.out;
    p.lse = args.lse;
    split_kv::launch_gather_clustered(p, kv.batch, kv.head_dim, stream);
    return;
  }
  split_kv::place_partials(p, args.workspace, kv.batch, kv.head_dim);
  split_kv::launch<true, false>(p, kv.batch, kv.head_dim, args.out, args.lse, stream);
}

}  // namespace deltainfer::cuda
