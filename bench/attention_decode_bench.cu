// Decode attention bandwidth: one query token per sequence against a paged KV cache (shuffled
// pages), GQA, bf16 or FP8 (--kv-dtype). The floor is the KV read: bytes = 2 (K, V) * kv_len / 64
// pages * the page's bytes of its dtype (kv_pool_page_bytes: 2 bytes a value in bf16; 1 byte a
// value plus a 4-byte scale per KV head in FP8). The ceiling is measured here: a large
// device-to-device cudaMemcpy, counting bytes read + written. Times are CUDA-event medians after
// warm-up.
//
//   build/h-cuda/bin/attention_decode_bench [--kv-dtype bf16|fp8|both]   # table + RESULT lines
//
// RESULT lines (key=value) are read by scripts/gpu-check and bench/peers/sdpa_decode.py --ours;
// the FP8 ones are bench=decode_attention_fp8 (the peer compares bf16 with bf16).
#include <cuda_bf16.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <numeric>
#include <random>
#include <vector>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/decode_attention.h"
#include "backend/cuda/device_buffer.h"
#include "backend/cuda/hardware_rates.h"
#include "bench_support.cuh"

namespace {

using bench_support::fill_random;
using bench_support::fill_random_fp8;
using bench_support::median_ms;
using deltainfer::KvDtype;
using deltainfer::cuda::DeviceBuffer;

struct Shape {
  int batch, kv_len, n_heads, n_kv_heads, head_dim;
};

// One layer's pools of `dtype`: random values (bf16) or codes with scales of 1/64 (FP8).
struct Pools {
  DeviceBuffer<unsigned char> k, v;
  DeviceBuffer<float> k_scales, v_scales;
  Pools(KvDtype dtype, int num_pages, int n_kv_heads, int head_dim)
      : k(static_cast<size_t>(num_pages) * n_kv_heads * deltainfer::cuda::kKvPageSize * head_dim *
          deltainfer::cuda::kv_value_bytes(dtype)),
        v(k.size()) {
    if (dtype == KvDtype::Bf16) {
      fill_random(reinterpret_cast<__nv_bfloat16*>(k.data()), k.size() / 2, 1u);
      fill_random(reinterpret_cast<__nv_bfloat16*>(v.data()), v.size() / 2, 2u);
      return;
    }
    fill_random_fp8(k.data(), k.size(), 1u);
    fill_random_fp8(v.data(), v.size(), 2u);
    const std::vector<float> scales(static_cast<size_t>(num_pages) * n_kv_heads, 1.0f / 64);
    k_scales = deltainfer::cuda::to_device(scales);
    v_scales = deltainfer::cuda::to_device(scales);
  }
};

void run(const Shape& s, KvDtype dtype, double copy_tbps, int forced_splits = 0) {
  using namespace deltainfer::cuda;
  const int pages_per_seq = (s.kv_len + kKvPageSize - 1) / kKvPageSize;
  const int num_pages = pages_per_seq * s.batch;
  const Pools pools(dtype, num_pages, s.n_kv_heads, s.head_dim);
  DeviceBuffer<__nv_bfloat16> q(static_cast<size_t>(s.batch) * s.n_heads * s.head_dim);
  DeviceBuffer<__nv_bfloat16> out(q.size());
  fill_random(q.data(), q.size(), 3u);
  CUDA_CHECK_LAUNCH();
  std::vector<int32_t> table(static_cast<size_t>(num_pages));
  std::iota(table.begin(), table.end(), 0);
  std::shuffle(table.begin(), table.end(), std::mt19937(7));
  auto d_table = to_device(table);
  auto d_lens = to_device(std::vector<int32_t>(static_cast<size_t>(s.batch), s.kv_len));
  DeviceBuffer<float> lse(static_cast<size_t>(s.batch) * s.n_heads);
  const DecodeAttentionPlan plan =
      plan_decode_attention(s.batch, s.n_heads, s.n_kv_heads, s.head_dim, s.kv_len, current_device_sm_count(),
                            forced_splits);
  DeviceBuffer<unsigned char> workspace(plan.workspace_bytes);

  DecodeAttentionArgs args;
  args.q = q.data();
  args.kv.k_pool = pools.k.data();
  args.kv.v_pool = pools.v.data();
  args.kv.dtype = dtype;
  args.kv.k_scales = pools.k_scales.data();
  args.kv.v_scales = pools.v_scales.data();
  args.kv.num_pages = num_pages;
  args.kv.page_table = d_table.data();
  args.kv.page_table_stride = pages_per_seq;
  args.kv.kv_lens = d_lens.data();
  args.kv.batch = s.batch;
  args.kv.max_kv_len = s.kv_len;
  args.kv.n_kv_heads = s.n_kv_heads;
  args.kv.head_dim = s.head_dim;
  args.n_heads = s.n_heads;
  args.softmax_scale = 0.088f;
  args.out = out.data();
  args.lse = lse.data();
  args.workspace = workspace.data();
  args.workspace_bytes = workspace.bytes();
  args.num_splits = forced_splits;
  const int repeats = s.kv_len >= 65536 ? 50 : 200;
  const float ms = median_ms([&] { decode_attention(args, nullptr); }, repeats, 50);
  const double bytes = 2.0 * s.batch * (static_cast<double>(s.kv_len) / kKvPageSize) *
                       static_cast<double>(deltainfer::kv_pool_page_bytes(dtype, s.n_kv_heads, s.head_dim));
  const double tbps = bytes / (ms * 1e-3) / 1e12;
  const char* name = deltainfer::kv_dtype_name(dtype);
  std::printf("| %-4s | %5d | %7d | %2d/%-2d | %3d | %6d | %9.1f | %6.2f | %5.1f%% |\n", name, s.batch, s.kv_len,
              s.n_heads, s.n_kv_heads, s.head_dim, plan.num_splits, ms * 1e3, tbps, 100.0 * tbps / copy_tbps);
  std::printf("RESULT bench=%s batch=%d kv_len=%d n_heads=%d n_kv_heads=%d head_dim=%d splits=%d "
              "time_us=%.2f tbps=%.3f pct_copy=%.1f\n",
              dtype == KvDtype::Bf16 ? "decode_attention" : "decode_attention_fp8", s.batch, s.kv_len, s.n_heads,
              s.n_kv_heads, s.head_dim, plan.num_splits, ms * 1e3, tbps, 100.0 * tbps / copy_tbps);
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<KvDtype> dtypes = bench_support::kv_dtypes_from_args(argc, argv);
  try {
    cudaDeviceProp prop{};
    CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
    const double copy_tbps = deltainfer::cuda::measure_copy_tbps();
    std::printf("device %s, %d SMs; device-to-device copy %.3f TB/s (read + write)\n", prop.name,
                prop.multiProcessorCount, copy_tbps);
    std::printf("RESULT bench=d2d_copy tbps=%.3f\n", copy_tbps);
    std::printf("| KV   | batch | kv_len  | heads | d   | splits | time (us) | TB/s   | of copy |\n");
    std::printf("|------|-------|---------|-------|-----|--------|-----------|--------|---------|\n");
    const Shape shapes[] = {{1, 131072, 32, 8, 128}, {1, 32768, 32, 8, 128}, {1, 4096, 32, 8, 128},
                            {8, 16384, 32, 8, 128},  {32, 4096, 32, 8, 128}, {1, 131072, 28, 4, 128},
                            {1, 131072, 9, 3, 64},   {1, 131072, 64, 8, 128}};
    for (const KvDtype dtype : dtypes) {
      for (const Shape& s : shapes) run(s, dtype, copy_tbps);
      // The headline shape again, and with other split counts (1, 2, 4 waves of blocks).
      std::printf("headline shape again, then forced split counts:\n");
      for (int splits : {0, 66, 132, 264}) run(shapes[0], dtype, copy_tbps, splits);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "attention_decode_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
