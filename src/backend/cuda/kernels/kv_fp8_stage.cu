// FP8 pages -> bf16 staging pool (kv_fp8_stage.h): one block per (staged page, KV head, K|V).
#include <cuda_bf16.h>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernels/fp8_convert.cuh"
#include "backend/cuda/kv_fp8_stage.h"
#include "core/error.h"

namespace deltainfer::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kCodesPerLoad = 16;  // one 16-byte load of codes -> two 16-byte stores of bf16

// Codes 2 pair and 2 pair + 1 of `codes` times the slab's scale, as a bf16 pair (exact: a power of
// two times an e4m3 value).
__device__ __forceinline__ uint32_t dequantize_pair(uint32_t codes, int pair, float scale) {
  const float2 f = e4m3x2_to_float2(codes >> (16 * pair));
  const __nv_bfloat162 b = __floats2bfloat162_rn(f.x * scale, f.y * scale);
  return *reinterpret_cast<const uint32_t*>(&b);
}

// grid: (n_pages * n_kv_heads, 2 (K, V)); block: kThreads.
__global__ void __launch_bounds__(kThreads) fp8_stage_kernel(const Fp8StageArgs a) {
  const PagedKv& kv = a.source;
  const int staged = static_cast<int>(blockIdx.x) / kv.n_kv_heads;
  const int head = static_cast<int>(blockIdx.x) % kv.n_kv_heads;
  const bool is_v = blockIdx.y == 1;
  const int page = a.pages[staged];
  const int slab_values = kKvPageSize * kv.head_dim;
  uint4* dst = reinterpret_cast<uint4*>((is_v ? a.v_stage : a.k_stage) +
                                        (static_cast<size_t>(staged) * kv.n_kv_heads + head) * slab_values);
  const int loads = slab_values / kCodesPerLoad;
  if (page < 0 || page >= kv.num_pages) {
    const __nv_bfloat162 nan2 = __floats2bfloat162_rn(NAN, NAN);
    const uint32_t nan_word = *reinterpret_cast<const uint32_t*>(&nan2);
    for (int i = static_cast<int>(threadIdx.x); i < 2 * loads; i += kThreads) {
      dst[i] = make_uint4(nan_word, nan_word, nan_word, nan_word);
    }
    return;
  }
  const size_t slab = static_cast<size_t>(page) * kv.n_kv_heads + head;
  const auto* src = reinterpret_cast<const uint4*>(static_cast<const unsigned char*>(is_v ? kv.v_pool : kv.k_pool) +
                                                   slab * slab_values);
  const float scale = (is_v ? kv.v_scales : kv.k_scales)[slab];
  for (int i = static_cast<int>(threadIdx.x); i < loads; i += kThreads) {
    const uint4 codes = src[i];
    dst[2 * i] = make_uint4(dequantize_pair(codes.x, 0, scale), dequantize_pair(codes.x, 1, scale),
                            dequantize_pair(codes.y, 0, scale), dequantize_pair(codes.y, 1, scale));
    dst[2 * i + 1] = make_uint4(dequantize_pair(codes.z, 0, scale), dequantize_pair(codes.z, 1, scale),
                                dequantize_pair(codes.w, 0, scale), dequantize_pair(codes.w, 1, scale));
  }
}

}  // namespace

void fp8_stage_pages(const Fp8StageArgs& args, cudaStream_t stream) {
  const PagedKv& kv = args.source;
  if (kv.dtype != KvDtype::Fp8E4m3) {
    throw_input_error("fp8_stage_pages: the source pools are {}, not fp8", kv_dtype_name(kv.dtype));
  }
  // Only the pools are read: no table rows or lengths.
  if (kv.k_pool == nullptr || kv.v_pool == nullptr || kv.k_scales == nullptr || kv.v_scales == nullptr) {
    throw_input_error("fp8_stage_pages: a source pool or scale pointer is null");
  }
  if (kv.num_pages < 1 || kv.n_kv_heads < 1 || (kv.head_dim != 64 && kv.head_dim != 128)) {
    throw_input_error("fp8_stage_pages: num_pages {}, n_kv_heads {}, head_dim {}: need pages, heads and a head_dim "
                      "of 64 or 128",
                      kv.num_pages, kv.n_kv_heads, kv.head_dim);
  }
  if (args.n_pages < 0) throw_input_error("fp8_stage_pages: n_pages {} < 0", args.n_pages);
  if (args.n_pages == 0) return;
  if (args.pages == nullptr || args.k_stage == nullptr || args.v_stage == nullptr) {
    throw_input_error("fp8_stage_pages: the page list or a staging pool is null");
  }
  const dim3 grid(static_cast<unsigned>(args.n_pages * kv.n_kv_heads), 2);
  fp8_stage_kernel<<<grid, kThreads, 0, stream>>>(args);
  CUDA_CHECK_LAUNCH();
}

StagingTables staging_tables(const int32_t* page_table, int stride, const std::vector<int>& pages_needed) {
  StagingTables tables;
  tables.stride = stride;
  tables.table.assign(pages_needed.size() * static_cast<size_t>(stride), -1);
  for (size_t s = 0; s < pages_needed.size(); ++s) {
    const int needed = pages_needed[s];
    if (needed < 0 || needed > stride) {
      throw_input_error("staging_tables: sequence {} needs {} pages; its page-table row holds {}", s, needed, stride);
    }
    for (int p = 0; p < needed; ++p) {
      const size_t entry = s * static_cast<size_t>(stride) + static_cast<size_t>(p);
      tables.table[entry] = static_cast<int32_t>(tables.pages.size());
      tables.pages.push_back(page_table[entry]);
    }
  }
  return tables;
}

}  // namespace deltainfer::cuda
