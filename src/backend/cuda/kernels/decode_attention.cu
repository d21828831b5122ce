// Dense split-KV decode attention: the kernels live in decode_split.cuh (shared with sparse
// decode); this file plans the split count and launches them, optionally emitting the logits.
#include <cuda_bf16.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/decode_attention.h"
#include "backend/cuda/kernels/decode_split.cuh"
#include "core/error.h"

namespace deltainfer::cuda {
int current_device_sm_count() {
  constexpr int kMaxDevices = 64;
  static int cached[kMaxDevices] = {};
  int device = 0;
  CUDA_CHECK(cudaGetDevice(&device));
  if (device >= kMaxDevices) device = kMaxDevices - 1;
  if (cached[device] == 0) {
    CUDA_CHECK(cudaDeviceGetAttribute(&cached[device], cudaDevAttrMultiProcessorCount, device));
  }
  return cached[device];
}

DecodeAttentionPlan plan_decode_attention(int batch, int n_heads, int n_kv_heads, int head_dim,
                                          int max_kv_len, int sm_count, int num_splits) {
  split_kv::validate_shape("decode_attention", batch, n_heads, n_kv_heads, head_dim, max_kv_len);
  DecodeAttentionPlan plan;
  plan.num_splits = split_kv::plan_splits(batch * n_kv_heads, head_dim, n_heads / n_kv_heads, max_kv_len,
                                          split_kv::kMinTokensPerSplit, sm_count, num_splits);
  plan.workspace_bytes = split_kv::workspace_bytes(batch, n_heads, head_dim, plan.num_splits);
  return plan;
}

void decode_attention(const DecodeAttentionArgs& args, cudaStream_t stream) {
  const PagedKv& kv = args.kv;
  validate_paged_kv("decode_attention", kv);
  const DecodeAttentionPlan plan = plan_decode_attention(kv.batch, args.n_heads, kv.n_kv_heads, kv.head_dim,
                                                         kv.max_kv_len, current_device_sm_count(), args.num_splits);
  if (args.workspace_bytes < plan.workspace_bytes || args.workspace == nullptr) {
    throw_input_error("decode_attention: workspace of {} bytes, {} needed", args.workspace_bytes,
                      plan.workspace_bytes);
  }
  if (args.q == nullptr || args.out == nullptr) throw_input_error("decode_attention: q or out is null");
  if (args.logits != nullptr && args.logits_stride < kv.max_kv_len) {
    throw_input_error("decode_attention: logits rows of {} tokens cannot hold max_kv_len {}", args.logits_stride,
                      kv.max_kv_len);
  }
  split_kv::SplitParams p{};
  split_kv::point_at_cache(p, kv);
  p.q = args.q;
  p.kv_lens = kv.kv_lens;
  p.n_heads = args.n_heads;
  p.group = args.n_heads / kv.n_kv_heads;
  p.num_splits = plan.num_splits;
  p.scale_log2 = args.softmax_scale * split_kv::kLog2e;
  p.logits = args.logits;
  p.logits_stride = args.logits_stride;
  split_kv::place_partials(p, args.workspace, kv.batch, kv.head_dim);
  if (args.logits != nullptr) {
    split_kv::launch<false, true>(p, kv.batch, kv.head_dim, args.out, args.lse, stream);
  } else {
    split_kv::launch<false, false>(p, kv.batch, kv.head_dim, args.out, args.lse, stream);
  }
}

}  // namespace deltainfer::cuda
