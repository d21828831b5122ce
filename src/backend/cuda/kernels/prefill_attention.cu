// Host entry of dense prefill attention: validates the shapes, builds the kernel parameters and
// picks the kernel (Hopper wgmma when the device has it, else the mma.sync one).
#include "backend/cuda/prefill_attention.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <optional>
#include <string_view>

#include "backend/cuda/kernels/prefill_attention_launch.cuh"
#include "core/error.h"

namespace deltainfer::cuda {

void prefill::validate_kv(const char* what, const PagedKv& kv) {
  if (kv.dtype != KvDtype::Bf16) {
    throw_input_error("{}: the KV cache is {}; the prefill kernels read bf16 pages (stage an FP8 cache to bf16 "
                      "first, kv_fp8_stage.h)",
                      what, kv_dtype_name(kv.dtype));
  }
  validate_paged_kv(what, kv, PagedKvReads{/*values=*/true, /*lengths=*/false});
  if (kv.num_pages < 1) {
    throw_input_error("{}: paged KV field 'num_pages' is {}; the Hopper kernel bounds its page loads by it (need >= 1)",
                      what, kv.num_pages);
  }
}

void prefill::validate(const PrefillAttentionArgs& a) {
  constexpr const char* kWhat = "prefill attention";
  if (a.kv.head_dim != 64 && a.kv.head_dim != 128) {
    throw_input_error("{}: head dim {} is not supported (64 or 128)", kWhat, a.kv.head_dim);
  }
  if (a.n_heads <= 0 || a.kv.n_kv_heads <= 0 || a.n_heads % a.kv.n_kv_heads != 0) {
    throw_input_error("{}: {} query heads cannot share {} KV heads", kWhat, a.n_heads, a.kv.n_kv_heads);
  }
  if (a.kv.batch != 1) {
    throw_input_error("{}: the cache holds {} sequences; a single-sequence call takes one (sequence_kv)", kWhat,
                      a.kv.batch);
  }
  const int kv_len = a.kv.max_kv_len;
  if (a.n_q < 0 || kv_len < 1) {
    throw_input_error("{}: n_q {} and kv_len {} must be >= 0 and >= 1", kWhat, a.n_q, kv_len);
  }
  if (a.q_pos == nullptr && (a.first_pos < 0 || int64_t{a.first_pos} + a.n_q > kv_len)) {
    throw_input_error("{}: queries at {}..{} reach past kv_len {}", kWhat, a.first_pos,
                      int64_t{a.first_pos} + a.n_q - 1, kv_len);
  }
  if (a.q == nullptr || a.out == nullptr || !(a.softmax_scale > 0.0f)) {
    throw_input_error("{}: null q or out, or non-positive softmax scale", kWhat);
  }
  validate_kv(kWhat, a.kv);
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
  p.k_pool = static_cast<const bf16*>(args.kv.k_pool);  // bf16: validate() refuses other dtypes
  p.v_pool = static_cast<const bf16*>(args.kv.v_pool);
  p.page_table = args.kv.page_table;
  p.q_pos = args.q_pos;
  p.out = args.out;
  p.lse = args.lse;
  p.n_q = args.n_q;
  p.n_heads = args.n_heads;
  p.n_kv_heads = args.kv.n_kv_heads;
  p.group = args.n_heads / args.kv.n_kv_heads;
  p.kv_len = args.kv.max_kv_len;
  p.first_pos = args.first_pos;
  p.scale_log2 = args.softmax_scale * 1.4426950408889634f;
  return p;
}

PagedKv bf16_batch_kv(const __nv_bfloat16* k_pool, const __nv_bfloat16* v_pool, int num_pages, int n_kv_heads,
                      int head_dim, const int32_t* page_table, int page_table_stride, int batch) {
  PagedKv kv;
  kv.k_pool = k_pool;
  kv.v_pool = v_pool;
  kv.num_pages = num_pages;
  kv.page_table = page_table;
  kv.page_table_stride = page_table_stride;
  kv.batch = batch;
  kv.max_kv_len = page_table_stride * kKvPageSize;
  kv.n_kv_heads = n_kv_heads;
  kv.head_dim = head_dim;
  return kv;
}

PagedKv bf16_sequence_kv(const __nv_bfloat16* k_pool, const __nv_bfloat16* v_pool, int num_pages, int n_kv_heads,
                         int head_dim, const int32_t* page_table, int kv_len) {
  const int pages = std::max(1, (kv_len + kKvPageSize - 1) / kKvPageSize);
  return sequence_kv(bf16_batch_kv(k_pool, v_pool, num_pages, n_kv_heads, head_dim, page_table, pages, 1), 0, kv_len);
}

std::optional<PrefillKernel> prefill_kernel_named(std::string_view name) {
  if (name == "auto") return PrefillKernel::kAuto;
  if (name == "sm80") return PrefillKernel::kSm80;
  if (name == "sm90") return PrefillKernel::kSm90;
  if (name == "sm90ws") return PrefillKernel::kSm90Ws;
  return std::nullopt;
}

namespace {

PrefillKernel kernel_from_environment() {
  const char* name = std::getenv("DELTAINFER_PREFILL_KERNEL");
  const std::optional<PrefillKernel> named =
      name == nullptr || *name == '\0' ? PrefillKernel::kAuto : prefill_kernel_named(name);
  if (!named) {
    throw_input_error("DELTAINFER_PREFILL_KERNEL is '{}'; expected auto, sm80, sm90 or sm90ws (or unset)", name);
  }
  if (*named != PrefillKernel::kAuto) return *named;
  return prefill::device_has_wgmma() ? PrefillKernel::kSm90Ws : PrefillKernel::kSm80;
}

}  // namespace

PrefillKernel auto_prefill_kernel() {
  static const PrefillKernel kernel = kernel_from_environment();
  return kernel;
}

PrefillKernel resolved_prefill_kernel(PrefillKernel kernel) {
  return kernel == PrefillKernel::kAuto ? auto_prefill_kernel() : kernel;
}

void prefill_attention(const PrefillAttentionArgs& args, cudaStream_t stream,
                       PrefillKernel kernel) {
  prefill::validate(args);
  if (args.n_q == 0) return;
  const prefill::Params p = prefill::make_params(args);
  kernel = resolved_prefill_kernel(kernel);
  const cudaError_t err =
      kernel == PrefillKernel::kSm90   ? prefill::launch_sm90(p, args.kv.head_dim, args.kv.num_pages, stream)
      : kernel == PrefillKernel::kSm90Ws ? prefill::launch_sm90_ws(p, args.kv.head_dim, args.kv.num_pages, stream)
                                         : prefill::launch_sm80(p, args.kv.head_dim, stream);
  if (err != cudaSuccess) {
    throw_error("prefill attention: launch failed: {}", cudaGetErrorString(err));
  }
}

}  // namespace deltainfer::cuda
