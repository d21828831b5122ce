// Prefill attention benchmark: causal GQA over a paged KV cache, TFLOP/s counted as
// 4 * N^2 * d * heads / 2 (causal half of QK^T and PV), median of repeats timed with CUDA events.
// Prints "RESULT <kernel> <tokens> <ms> <tflops>" lines that bench/peers/sdpa_prefill.py --ours
// reads to print the ratio against PyTorch SDPA.
//   attention_prefill_bench [--tokens 8192,32768,131072] [--heads 32] [--kv-heads 8] [--dim 128]
//                           [--kernel sm80|sm90|sm90ws|both|all[,...]]
// --kernel takes a comma list; both = sm80,sm90 (the default), all = sm80,sm90,sm90ws. sm90ws is
// the FA3-style kernel (PrefillKernel::kSm90Ws, the engine's default on Hopper); time it beside
// the v3 kernel with --kernel sm90,sm90ws.
#include <CLI/CLI.hpp>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "backend/cuda/hardware_rates.h"
#include "backend/cuda/prefill_attention.h"
#include "bench_support.cuh"

namespace {

using bench_support::check;
using bench_support::DeviceArray;
using bench_support::fill_random;
using bench_support::median_ms;
using deltainfer::cuda::PrefillAttentionArgs;
using deltainfer::cuda::PrefillKernel;

const char* kernel_name(PrefillKernel kernel) {
  switch (kernel) {
    case PrefillKernel::kSm80:
      return "sm80";
    case PrefillKernel::kSm90:
      return "sm90";
    case PrefillKernel::kSm90Ws:
      return "sm90ws";
    case PrefillKernel::kAuto:
      break;
  }
  return "auto";
}

// The kernels of a --kernel list, in the order given, each once.
std::vector<PrefillKernel> kernels_of(const std::vector<std::string>& names) {
  std::vector<PrefillKernel> kernels;
  const auto add = [&](PrefillKernel k) {
    if (std::find(kernels.begin(), kernels.end(), k) == kernels.end()) kernels.push_back(k);
  };
  for (const std::string& name : names) {
    if (name == "sm80" || name == "both" || name == "all") add(PrefillKernel::kSm80);
    if (name == "sm90" || name == "both" || name == "all") add(PrefillKernel::kSm90);
    if (name == "sm90ws" || name == "all") add(PrefillKernel::kSm90Ws);
  }
  return kernels;
}

double kernel_median_ms(const PrefillAttentionArgs& args, PrefillKernel kernel, int repeats) {
  return median_ms([&] { deltainfer::cuda::prefill_attention(args, nullptr, kernel); }, repeats, 2);
}

void run_size(int tokens, int heads, int kv_heads, int dim, const std::vector<PrefillKernel>& kernels, double gemm_tflops) {
  const int pages = (tokens + deltainfer::cuda::kKvPageSize - 1) / deltainfer::cuda::kKvPageSize;
  const size_t q_elems = static_cast<size_t>(tokens) * heads * dim;
  const size_t pool_elems =
      static_cast<size_t>(pages) * kv_heads * deltainfer::cuda::kKvPageSize * dim;
  DeviceArray q(q_elems * 2), k(pool_elems * 2), v(pool_elems * 2), out(q_elems * 2),
      lse(static_cast<size_t>(tokens) * heads * 4), table(static_cast<size_t>(pages) * 4);
  fill_random(q.as<__nv_bfloat16>(), q_elems, 1u);
  fill_random(k.as<__nv_bfloat16>(), pool_elems, 2u);
  fill_random(v.as<__nv_bfloat16>(), pool_elems, 3u);
  check(cudaGetLastError(), "fill_random");
  std::vector<int32_t> page_table(static_cast<size_t>(pages));
  std::iota(page_table.begin(), page_table.end(), 0);
  std::shuffle(page_table.begin(), page_table.end(), std::mt19937(7));
  check(cudaMemcpy(table.ptr, page_table.data(), page_table.size() * 4, cudaMemcpyHostToDevice),
        "page table");

  PrefillAttentionArgs args;
  args.q = q.as<__nv_bfloat16>();
  args.n_q = tokens;
  args.n_heads = heads;
  args.softmax_scale = 1.0f / std::sqrt(static_cast<float>(dim));
  args.kv = deltainfer::cuda::bf16_sequence_kv(k.as<__nv_bfloat16>(), v.as<__nv_bfloat16>(), pages, kv_heads, dim,
                                               table.as<int32_t>(), tokens);
  args.out = out.as<__nv_bfloat16>();
  args.lse = lse.as<float>();

  const double flops = 4.0 * tokens * static_cast<double>(tokens) * dim * heads / 2.0;
  const int repeats = tokens >= 100000 ? 5 : tokens >= 30000 ? 10 : 30;
  for (const PrefillKernel kernel : kernels) {
    const char* name = kernel_name(kernel);
    const double ms = kernel_median_ms(args, kernel, repeats);
    const double tflops = flops / (ms * 1e-3) / 1e12;
    std::printf("ours-%s tokens=%d heads=%d/%d d=%d: %.3f ms, %.1f TFLOP/s, %.1f%% of the %.0f TFLOP/s GEMM rate measured\n",
                name, tokens, heads, kv_heads, dim, ms, tflops, 100.0 * tflops / gemm_tflops, gemm_tflops);
    std::printf("RESULT %s %d %.4f %.2f\n", name, tokens, ms, tflops);
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Prefill attention benchmark (causal, GQA, paged KV)"};
  std::vector<int> tokens{8192, 32768, 131072};
  int heads = 32, kv_heads = 8, dim = 128;
  std::vector<std::string> kernel_names{"both"};
  app.add_option("--tokens", tokens, "sequence lengths")->delimiter(',');
  app.add_option("--heads", heads, "query heads");
  app.add_option("--kv-heads", kv_heads, "KV heads");
  app.add_option("--dim", dim, "head dim (64 or 128)");
  app.add_option("--kernel", kernel_names, "comma list of sm80, sm90, sm90ws, both, all")
      ->delimiter(',')
      ->check(CLI::IsMember({"sm80", "sm90", "sm90ws", "both", "all"}));
  CLI11_PARSE(app, argc, argv);
  const std::vector<PrefillKernel> kernels = kernels_of(kernel_names);
  try {
    // The ceiling the kernels are held to, measured on this device in this run (cuBLASLt bf16).
    const deltainfer::cuda::HardwareRates rates = deltainfer::cuda::measure_hardware_rates();
    std::printf("bf16 GEMM %.1f TFLOP/s (cuBLASLt 8192^3), device copy %.3f TB/s, measured in this run\n",
                rates.gemm_tflops, rates.copy_tbps);
    std::printf("RESULT bench=gemm_rate tflops=%.1f\n", rates.gemm_tflops);
    for (const int n : tokens) run_size(n, heads, kv_heads, dim, kernels, rates.gemm_tflops);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "attention_prefill_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
