// Host entry of dense prefill attention: validates the shapes, builds the kernel parameters and
// picks the kernel (Hopper wgmma when the device has it, else the mma.sync one).
#include "backend/cuda/prefill_attention.h"

#include <cmath>

#include "backend/cuda/kernels/prefill_attention_launch.cuh"
#include "core/error.h"

namespace deltainfer::cuda {

void prefill::validate(const PrefillAttentionArgs& a) {
  if (a.head_dim != 64 && a.head_dim != 128) {
    throw_input_error("prefill attention: head dim {} is not supported (64 or 128)", a.head_dim);
  }
  if (a.n_heads <= 0 || a.n_kv_heads <= 0 || a.n_heads % a.n_kv_heads != 0) {
    throw_input_error("prefill attention: {} query heads cannot share {} KV heads", a.n_heads,
                      a.n_kv_heads);
  }
  if (a.n_q < 0 || a.kv.kv_len < 1) {
    throw_input_error("prefill attention: n_q {} and kv_len {} must be >= 0 and >= 1", a.n_q,
                      a.kv.kv_len);
  }
  if (a.q_pos == nullptr && (a.first_pos < 0 || int64_t{a.first_pos} + a.n_q > a.kv.kv_len)) {
    throw_input_error("prefill attention: queries at {}..{} reach past kv_len {}", a.first_pos,
                      int64_t{a.first_pos} + a.n_q - 1, a.kv.kv_len);
  }
  if (a.q == nullptr || a.out == nullptr || a.kv.k_pool == nullptr || a.kv.v_pool == nullptr ||
      a.kv.page_table == nullptr || !(a.softmax_scale > 0.0f)) {
    throw_input_error("prefill attention: null pointer or non-positive softmax scale");
  }
}

bool prefill::device_has_wgmma() {
  int device = 0;
  int major = 0;
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess) {
    return false;
  }
  return major == 9;
}

prefill::Params prefill::make_params(const PrefillAttentionArgs& args) {
  Params p{};
  p.q = args.q;
  p.k_pool = args.kv.k_pool;
  p.v_pool = args.kv.v_pool;
  p.page_table = args.kv.page_table;
  p.q_pos = args.q_pos;
  p.out = args.out;
  p.lse = args.lse;
  p.n_q = args.n_q;
  p.n_heads = args.n_heads;
  p.n_kv_heads = args.n_kv_heads;
  p.group = args.n_heads / args.n_kv_heads;
  p.kv_len = args.kv.kv_len;
  p.first_pos = args.first_pos;
  p.scale_log2 = args.softmax_scale * 1.4426950408889634f;
  return p;
}

void prefill_attention(const PrefillAttentionArgs& args, cudaStream_t stream,
                       PrefillKernel kernel) {
  prefill::validate(args);
  if (args.n_q == 0) return;
  const prefill::Params p = prefill::make_params(args);
  if (kernel == PrefillKernel::kAuto) {
    kernel = prefill::device_has_wgmma() ? PrefillKernel::kSm90 : PrefillKernel::kSm80;
  }
  const cudaError_t err =
      kernel == PrefillKernel::kSm90   ? prefill::launch_sm90(p, args.head_dim, args.kv.num_pages, stream)
      : kernel == PrefillKernel::kSm90Ws ? prefill::launch_sm90_ws(p, args.head_dim, args.kv.num_pages, stream)
                                         : prefill::launch_sm80(p, args.head_dim, stream);
  if (err != cudaSuccess) {
    throw_error("prefill attention: launch failed: {}", cudaGetErrorString(err));
  }
}

}  // namespace deltainfer::cuda
