// The FP8 paged KV append (kv_fp8_append.h): one block per (run, KV head, K|V).
#include <cuda_bf16.h>
#include <cuda_fp8.h>

#include <algorithm>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/decode_attention.h"
#include "backend/cuda/kv_fp8_append.h"
#include "core/error.h"
#include "core/fp8_e4m3.h"
#include "core/kv_fp8_page.h"

namespace deltainfer::cuda {
namespace {

constexpr int kThreads = 128;

// The hardware's cvt.rn.satfinite for finite values; NaN for non-finite ones (fp8_e4m3_encode).
__device__ __forceinline__ uint8_t encode_e4m3(float x) {
  if (!isfinite(x)) return kFp8E4m3Nan;
  return static_cast<uint8_t>(__nv_cvt_float_to_fp8(x, __NV_SATFINITE, __NV_E4M3));
}

__device__ __forceinline__ float decode_e4m3(uint8_t code) {
  return __half2float(__half(__nv_cvt_fp8_to_halfraw(code, __NV_E4M3)));
}

__device__ float block_max(float value) {
  __shared__ float warp_max[kThreads / 32];
  for (int offset = 16; offset > 0; offset /= 2) value = fmaxf(value, __shfl_xor_sync(0xffffffffu, value, offset));
  if (threadIdx.x % 32 == 0) warp_max[threadIdx.x / 32] = value;
  __syncthreads();
  float result = warp_max[0];
  for (int w = 1; w < kThreads / 32; ++w) result = fmaxf(result, warp_max[w]);
  return result;
}

__global__ void __launch_bounds__(kThreads) fp8_append_kernel(const Fp8AppendArgs a) {
  const KvPageRun run = a.runs[blockIdx.x];
  const int head = static_cast<int>(blockIdx.y);
  const bool is_v = blockIdx.z == 1;
  const __nv_bfloat16* rows = is_v ? a.v : a.k;
  const int page = a.page_table[static_cast<size_t>(run.seq) * a.page_table_stride + run.first_position / kKvPageSize];
  const int first_slot = run.first_position % kKvPageSize;
  const size_t slab = static_cast<size_t>(page) * a.n_kv_heads + head;
  uint8_t* codes = (is_v ? a.v_codes : a.k_codes) + slab * kKvPageSize * a.head_dim;
  float* scale = (is_v ? a.v_scales : a.k_scales) + slab;
  const int values = run.count * a.head_dim;
  auto value_at = [&](int i) {
    const int r = i / a.head_dim;
    return __bfloat162float(
        rows[(static_cast<size_t>(run.first_row + r) * a.n_kv_heads + head) * a.head_dim + i % a.head_dim]);
  };

  float amax = 0.0f;
  for (int i = static_cast<int>(threadIdx.x); i < values; i += kThreads) {
    const float x = value_at(i);
    if (isfinite(x)) amax = fmaxf(amax, fabsf(x));
  }
  amax = block_max(amax);
  const float old_scale = first_slot == 0 ? 0.0f : *scale;
  const float new_scale = fmaxf(old_scale, fp8_page_scale_for(amax));
  if (old_scale > 0.0f && new_scale > old_scale) {
    const float factor = old_scale / new_scale;  // a power of two
    for (int i = static_cast<int>(threadIdx.x); i < first_slot * a.head_dim; i += kThreads) {
      codes[i] = encode_e4m3(decode_e4m3(codes[i]) * factor);
    }
  }
  const float inverse = new_scale > 0.0f ? 1.0f / new_scale : 1.0f;
  uint8_t* out = codes + static_cast<size_t>(first_slot) * a.head_dim;
  for (int i = static_cast<int>(threadIdx.x); i < values; i += kThreads) out[i] = encode_e4m3(value_at(i) * inverse);
  __syncthreads();  // every thread has read the old scale before it is replaced
  if (threadIdx.x == 0) *scale = new_scale;
}

}  // namespace

std::vector<KvPageRun> kv_page_runs(const std::vector<KvPageRun>& entries) {
  std::vector<KvPageRun> runs;
  for (const KvPageRun& entry : entries) {
    for (int32_t done = 0; done < entry.count;) {
      const int32_t position = entry.first_position + done;
      const int32_t count = std::min(entry.count - done, kKvPageSize - position % kKvPageSize);
      runs.push_back({entry.first_row + done, entry.seq, position, count});
      done += count;
    }
  }
  return runs;
}

void fp8_append_kv(const Fp8AppendArgs& args, cudaStream_t stream) {
  if (args.head_dim != 64 && args.head_dim != 128) {
    throw_input_error("fp8_append_kv: head_dim {} (64 or 128 supported)", args.head_dim);
  }
  if (args.n_kv_heads <= 0 || args.n_kv_heads > 65535) {
    throw_input_error("fp8_append_kv: {} KV heads", args.n_kv_heads);
  }
  if (args.n_runs <= 0) return;
  if (args.k == nullptr || args.v == nullptr || args.runs == nullptr || args.page_table == nullptr ||
      args.k_codes == nullptr || args.v_codes == nullptr || args.k_scales == nullptr || args.v_scales == nullptr) {
    throw_input_error("fp8_append_kv: a required device pointer is null");
  }
  const dim3 grid(static_cast<unsigned>(args.n_runs), static_cast<unsigned>(args.n_kv_heads), 2);
  fp8_append_kernel<<<grid, kThreads, 0, stream>>>(args);
  CUDA_CHECK_LAUNCH();
}

}  // namespace deltainfer::cuda
