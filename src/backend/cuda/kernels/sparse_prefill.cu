// Host entry of the sparse prefill kernels: checks the sparse parameters on top of the dense
// ones and launches the sm90 kernel (v3, or the FA3-style one on kSm90Ws) in its
// sliding or block-list mode.
#include "backend/cuda/sparse_prefill.h"

#include "backend/cuda/kernels/prefill_attention_launch.cuh"
#include "core/error.h"

namespace deltainfer::cuda {
namespace {

prefill::Params checked_params(const PrefillAttentionArgs& args, const DeltaFusion& fused,
                               const char* what) {
  prefill::validate(args);
  if (!prefill::device_has_wgmma()) {
    throw_input_error("{}: needs a Hopper (sm_90) GPU", what);
  }
  prefill::Params p = prefill::make_params(args);
  if (fused.dense_rows != nullptr) {
    const int g = fused.gamma;
    if (g != 16 && g != 32 && g != 64) {
      throw_input_error("{}: fused delta correction needs gamma 16, 32 or 64, not {}", what, g);
    }
    if (args.q_pos != nullptr || args.first_pos % g != 0) {
      throw_input_error(
          "{}: fused delta correction needs contiguous queries starting at a multiple of "
          "gamma {} (first_pos {})",
          what, g, args.first_pos);
    }
    p.delta_dense = fused.dense_rows;
    p.gamma = g;
  }
  return p;
}

void check_launch(cudaError_t err, const char* what) {
  if (err != cudaSuccess) throw_error("{}: launch failed: {}", what, cudaGetErrorString(err));
}

// True for the FA3-style kernel, asked for or what kAuto resolves to; else v3.
bool use_ws(PrefillKernel kernel, const char* what) {
  if (kernel == PrefillKernel::kSm80) {
    throw_input_error("{}: the sm80 kernel has no sparse modes (use kAuto, kSm90 or kSm90Ws)", what);
  }
  return resolved_prefill_kernel(kernel) == PrefillKernel::kSm90Ws;
}

}  // namespace

void sliding_prefill_attention(const PrefillAttentionArgs& args, int window, int sink,
                               cudaStream_t stream, const DeltaFusion& fused, PrefillKernel kernel) {
  constexpr const char* kWhat = "sliding prefill attention";
  const bool ws = use_ws(kernel, kWhat);
  if (window < 1 || sink < 0) {
    throw_input_error("{}: window {} must be >= 1 and sink {} >= 0", kWhat, window, sink);
  }
  prefill::Params p = checked_params(args, fused, kWhat);
  if (args.n_q == 0) return;
  p.window = window;
  p.sink = sink;
  const auto launch = ws ? prefill::launch_sm90_ws_sliding : prefill::launch_sm90_sliding;
  check_launch(launch(p, args.kv.head_dim, args.kv.num_pages, stream), kWhat);
}

void block_sparse_prefill_attention(const PrefillAttentionArgs& args,
                                    const BlockSparseLists& lists, cudaStream_t stream,
                                    const DeltaFusion& fused, PrefillKernel kernel) {
  constexpr const char* kWhat = "block-sparse prefill attention";
  const bool ws = use_ws(kernel, kWhat);
  if (lists.offsets == nullptr || lists.indices == nullptr) {
    throw_input_error("{}: null block list", kWhat);
  }
  prefill::Params p = checked_params(args, fused, kWhat);
  if (args.n_q == 0) return;
  p.block_offsets = lists.offsets;
  p.block_indices = lists.indices;
  const auto launch = ws ? prefill::launch_sm90_ws_blocks : prefill::launch_sm90_blocks;
  check_launch(launch(p, args.kv.head_dim, args.kv.num_pages, stream), kWhat);
}

}  // namespace deltainfer::cuda
