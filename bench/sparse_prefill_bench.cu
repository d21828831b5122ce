// Sparse prefill benchmark: dense causal prefill vs sliding window + sink, sliding + delta
// correction (sparse pass + strided dense rows + correction, unfused and fused into the sparse
// epilogue) and block-sparse ("vertical-slash") lists + delta, GQA over a paged KV cache: with
// synthetic lists of a fixed budget, and (up to --vslash-max tokens) with lists estimated on the
// GPU (VslashEstimator: last --estimate queries, top --vertical columns and --slash diagonals),
// timed alone ("vslash-estimate") and with the fused delta pass ("vslash-estimated+delta-fused").
// On random inputs attention is diffuse, so the estimated lists are far denser than on a model.
// TFLOP/s count the work done: 4 * d * heads * (query, key) pairs attended. Median of repeats
// timed with CUDA events. Dense beyond --dense-max tokens is extrapolated from the largest
// measured size by N^2 (marked "extrapolated").
// Prints "RESULT <variant> <tokens> <ms> <tflops>" lines (bench/peers/flex_sliding.py --ours).
//   sparse_prefill_bench [--tokens 32768,131072,524288,1048576] [--window 2048] [--sink 64]
//                        [--gamma 64] [--vs-blocks 32] [--dense-max 131072] [--vslash-max 131072]
//                        [--estimate 64] [--vertical 1000] [--slash 6096] [--kernel auto|sm90|sm90ws]
// --kernel picks the kernel of every pass (dense, strided dense rows, sliding, vertical-slash):
// auto, the engine's (on Hopper the FlashAttention-3 style kernel, PrefillKernel::kSm90Ws); sm90,
// the v3 kernel; sm90ws.
#include <CLI/CLI.hpp>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "backend/cuda/delta_correct.h"
#include "backend/cuda/hardware_rates.h"
#include "backend/cuda/prefill_attention.h"
#include "backend/cuda/sparse_prefill.h"
#include "backend/cuda/vslash_estimate.h"
#include "bench_support.cuh"

namespace {

namespace dc = deltainfer::cuda;
using bench_support::check;
using bench_support::DeviceArray;
using bench_support::fill_random;
using bench_support::median_ms;
using bf16 = __nv_bfloat16;

struct Options {
  int heads = 32, kv_heads = 8, dim = 128, window = 2048, sink = 64, gamma = 64, vs_blocks = 32;
  int dense_max = 131072;
  int vslash_max = 131072;
  int estimate = 64, vertical = 1000, slash = 6096;
  dc::PrefillKernel kernel = dc::PrefillKernel::kAuto;
};

// (query, key) pairs of rows p0..p1 in key block b under the causal mask.
double block_pairs(int b, int p0, int p1) {
  const int kb = dc::kSparseKeyBlock;
  if ((b + 1) * kb - 1 <= p0) return static_cast<double>(kb) * (p1 - p0 + 1);
  double pairs = 0.0;
  for (int p = p0; p <= p1; ++p) pairs += std::clamp(p - b * kb + 1, 0, kb);
  return pairs;
}

// Pairs per head attended under device lists for a chunk of n rows at position 0.
double list_pairs(int n, int heads, const dc::BlockSparseLists& lists) {
  const int n_qblocks = (n + dc::kSparseQueryBlock - 1) / dc::kSparseQueryBlock;
  std::vector<int32_t> offsets(static_cast<size_t>(heads) * n_qblocks + 1);
  check(cudaMemcpy(offsets.data(), lists.offsets, offsets.size() * 4, cudaMemcpyDeviceToHost), "lists");
  std::vector<int32_t> indices(static_cast<size_t>(offsets.back()));
  check(cudaMemcpy(indices.data(), lists.indices, indices.size() * 4, cudaMemcpyDeviceToHost), "lists");
  double pairs = 0.0;
  for (size_t list = 0; list + 1 < offsets.size(); ++list) {
    const int qb = static_cast<int>(list % static_cast<size_t>(n_qblocks));
    const int p0 = qb * dc::kSparseQueryBlock, p1 = std::min(n, p0 + dc::kSparseQueryBlock) - 1;
    for (int32_t i = offsets[list]; i < offsets[list + 1]; ++i) pairs += block_pairs(indices[static_cast<size_t>(i)], p0, p1);
  }
  return pairs / heads;
}

// Synthetic vertical-slash lists with a fixed budget per (head, 128-row query block): block 0
// (vertical), the diagonal blocks of the query block, and random earlier blocks up to
// `budget` blocks of 64 keys. Returns the (query, key) pairs attended per head (the FLOP count
// multiplies by heads).
double vslash_lists(int n, int heads, int budget, std::vector<int32_t>& offsets,
                    std::vector<int32_t>& indices) {
  const int qb_rows = dc::kSparseQueryBlock, kb = dc::kSparseKeyBlock;
  const int n_qblocks = (n + qb_rows - 1) / qb_rows;
  std::mt19937 rng(11);
  double pairs = 0.0;
  offsets.assign(1, 0);
  std::vector<int> list;
  for (int h = 0; h < heads; ++h) {
    for (int qb = 0; qb < n_qblocks; ++qb) {
      const int p0 = qb * qb_rows, p1 = std::min(n, p0 + qb_rows) - 1;
      const int diag0 = p0 / kb, diag1 = p1 / kb;
      list.clear();
      for (int b = diag0; b <= diag1; ++b) list.push_back(b);
      if (diag0 > 0) list.push_back(0);
      const int want = std::min(budget, diag1 + 1);
      std::uniform_int_distribution<int> pick(1, std::max(1, diag0 - 1));
      while (static_cast<int>(list.size()) < want && diag0 > 1) {
        const int b = pick(rng);
        if (std::find(list.begin(), list.end(), b) == list.end()) list.push_back(b);
      }
      std::sort(list.begin(), list.end());
      for (const int b : list) pairs += block_pairs(b, p0, p1);
      indices.insert(indices.end(), list.begin(), list.end());
      offsets.push_back(static_cast<int32_t>(indices.size()));
    }
  }
  return pairs / heads;
}

double sliding_pairs(int n, int window, int sink) {
  double pairs = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t lo = std::max<int64_t>(0, i - window + 1);  // window keys lo..i
    pairs += static_cast<double>(i - lo + 1) + static_cast<double>(std::min<int64_t>(sink, lo));
  }
  return pairs;
}

struct Row {
  std::string name;
  double ms;
  double pairs;
  bool extrapolated;
};

double dense_reference_ms = 0.0;  // largest measured dense size and its time
int dense_reference_n = 0;

void run_size(int n, const Options& o, double gemm_tflops) {
  const int page = dc::kKvPageSize;
  const int pages = (n + page - 1) / page;
  const size_t row_elems = static_cast<size_t>(o.heads) * o.dim;
  const size_t q_elems = static_cast<size_t>(n) * row_elems;
  const size_t pool_elems = static_cast<size_t>(pages) * o.kv_heads * page * o.dim;
  const int n_strided = dc::strided_row_count(n, o.gamma);
  DeviceArray q(q_elems * 2), k(pool_elems * 2), v(pool_elems * 2), out(q_elems * 2),
      table(static_cast<size_t>(pages) * 4), q_strided(n_strided * row_elems * 2),
      dense_rows(n_strided * row_elems * 2), positions(static_cast<size_t>(n_strided) * 4);
  fill_random(q.as<bf16>(), q_elems, 1u);
  fill_random(k.as<bf16>(), pool_elems, 2u);
  fill_random(v.as<bf16>(), pool_elems, 3u);
  check(cudaGetLastError(), "fill_random");
  std::vector<int32_t> page_table(static_cast<size_t>(pages));
  std::iota(page_table.begin(), page_table.end(), 0);
  std::shuffle(page_table.begin(), page_table.end(), std::mt19937(7));
  check(cudaMemcpy(table.ptr, page_table.data(), page_table.size() * 4, cudaMemcpyHostToDevice),
        "page table");
  std::vector<int32_t> offsets, indices;
  const double vs_pairs = vslash_lists(n, o.heads, o.vs_blocks, offsets, indices);
  DeviceArray d_offsets(offsets.size() * 4), d_indices(indices.size() * 4);
  check(cudaMemcpy(d_offsets.ptr, offsets.data(), offsets.size() * 4, cudaMemcpyHostToDevice), "lists");
  check(cudaMemcpy(d_indices.ptr, indices.data(), indices.size() * 4, cudaMemcpyHostToDevice), "lists");

  dc::PrefillAttentionArgs args;
  args.q = q.as<bf16>();
  args.n_q = n;
  args.n_heads = o.heads;
  args.softmax_scale = 1.0f / std::sqrt(static_cast<float>(o.dim));
  args.kv = dc::bf16_sequence_kv(k.as<bf16>(), v.as<bf16>(), pages, o.kv_heads, o.dim, table.as<int32_t>(), n);
  args.out = out.as<bf16>();
  dc::PrefillAttentionArgs strided = args;
  strided.q = q_strided.as<bf16>();
  strided.q_pos = positions.as<int32_t>();
  strided.n_q = n_strided;
  strided.out = dense_rows.as<bf16>();
  dc::DeltaCorrectArgs corr;
  corr.sparse = out.as<bf16>();
  corr.dense_rows = dense_rows.as<bf16>();
  corr.out = out.as<bf16>();
  corr.n_q = n;
  corr.gamma = o.gamma;
  corr.row_elems = static_cast<int>(row_elems);
  const dc::DeltaFusion fused{dense_rows.as<bf16>(), o.gamma};
  const dc::BlockSparseLists lists{d_offsets.as<int32_t>(), d_indices.as<int32_t>()};

  const auto dense_pass = [&] {
    dc::gather_strided_rows(q.as<bf16>(), n, static_cast<int>(row_elems), o.gamma,
                            q_strided.as<bf16>(), nullptr);
    dc::strided_positions(n, 0, o.gamma, positions.as<int32_t>(), nullptr);
    dc::prefill_attention(strided, nullptr, o.kernel);
  };
  const auto sliding = [&] { dc::sliding_prefill_attention(args, o.window, o.sink, nullptr, {}, o.kernel); };
  const int reps = n >= 500000 ? 3 : n >= 100000 ? 5 : 10;

  double strided_pairs = 0.0;
  for (int r = 0; r < n_strided; ++r) strided_pairs += static_cast<double>(r) * o.gamma + 1;
  const double dense_pairs = static_cast<double>(n) * (n + 1) / 2.0;
  const double slide_pairs = sliding_pairs(n, o.window, o.sink);

  std::vector<Row> rows;
  if (n <= o.dense_max) {
    const double ms = median_ms([&] { dc::prefill_attention(args, nullptr, o.kernel); }, n >= 100000 ? 3 : 5);
    rows.push_back({"dense", ms, dense_pairs, false});
    dense_reference_ms = ms;
    dense_reference_n = n;
  } else {
    const double scale = static_cast<double>(n) / dense_reference_n;
    rows.push_back({"dense", dense_reference_ms * scale * scale, dense_pairs, true});
  }
  rows.push_back({"sliding", median_ms(sliding, reps), slide_pairs, false});
  rows.push_back({"strided-dense-rows", median_ms(dense_pass, reps), strided_pairs, false});
  rows.push_back({"delta-correct", median_ms([&] { dc::delta_correct(corr, nullptr); }, reps), 0.0, false});
  rows.push_back({"sliding+delta", median_ms([&] {
                    sliding();
                    dense_pass();
                    dc::delta_correct(corr, nullptr);
                  }, reps), slide_pairs + strided_pairs, false});
  rows.push_back({"sliding+delta-fused", median_ms([&] {
                    dense_pass();
                    dc::sliding_prefill_attention(args, o.window, o.sink, nullptr, fused, o.kernel);
                  }, reps), slide_pairs + strided_pairs, false});
  rows.push_back({"vslash", median_ms([&] { dc::block_sparse_prefill_attention(args, lists, nullptr, {}, o.kernel); }, reps),
                  vs_pairs, false});
  rows.push_back({"vslash+delta-fused", median_ms([&] {
                    dense_pass();
                    dc::block_sparse_prefill_attention(args, lists, nullptr, fused, o.kernel);
                  }, reps), vs_pairs + strided_pairs, false});
  double estimated_share = -1.0;
  if (n <= o.vslash_max) {
    dc::VslashEstimator estimator(o.heads, o.dim, n, n, {o.estimate, o.vertical, o.slash});
    dc::BlockSparseLists estimated;
    const auto estimate = [&] { estimated = estimator.build_lists(args, nullptr); };
    rows.push_back({"vslash-estimate", median_ms(estimate, reps), 0.0, false});
    const double estimated_pairs = list_pairs(n, o.heads, estimated);
    rows.push_back({"vslash-estimated+delta-fused", median_ms([&] {
                      estimate();
                      dense_pass();
                      dc::block_sparse_prefill_attention(args, estimated, nullptr, fused, o.kernel);
                    }, reps), estimated_pairs + strided_pairs, false});
    estimated_share = estimated_pairs / dense_pairs;
  }
  check(cudaDeviceSynchronize(), "bench");

  const double dense_ms = rows[0].ms;
  std::printf("\nN=%d heads=%d/%d d=%d window=%d sink=%d gamma=%d vslash budget=%d blocks kernel=%s\n", n,
              o.heads, o.kv_heads, o.dim, o.window, o.sink, o.gamma, o.vs_blocks,
              o.kernel == dc::PrefillKernel::kSm90Ws ? "sm90ws" : "sm90 (v3)");
  for (const Row& r : rows) {
    const double tflops = 4.0 * o.dim * o.heads * r.pairs / (r.ms * 1e-3) / 1e12;
    std::printf("  %-22s %10.3f ms %8.1f TFLOP/s (%5.1f%% of GEMM)  %7.2fx vs dense%s\n", r.name.c_str(), r.ms,
                tflops, 100.0 * tflops / gemm_tflops, dense_ms / r.ms, r.extrapolated ? "  (extrapolated N^2)" : "");
    std::printf("RESULT %s %d %.4f %.2f\n", r.name.c_str(), n, r.ms, tflops);
  }
  if (estimated_share >= 0.0) {
    std::printf("  estimated vertical-slash lists attend %.1f%% of the causal pairs\n", 100.0 * estimated_share);
  }
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Sparse prefill benchmark (sliding + sink, delta correction, vertical-slash)"};
  std::vector<int> tokens{32768, 131072, 524288, 1048576};
  Options o;
  app.add_option("--tokens", tokens, "sequence lengths")->delimiter(',');
  app.add_option("--heads", o.heads, "query heads");
  app.add_option("--kv-heads", o.kv_heads, "KV heads");
  app.add_option("--dim", o.dim, "head dim (64 or 128)");
  app.add_option("--window", o.window, "sliding window");
  app.add_option("--sink", o.sink, "sink tokens");
  app.add_option("--gamma", o.gamma, "delta stride");
  app.add_option("--vs-blocks", o.vs_blocks, "vertical-slash budget: 64-key blocks per query block");
  app.add_option("--dense-max", o.dense_max, "largest N timed dense (beyond: N^2 extrapolation)");
  app.add_option("--vslash-max", o.vslash_max, "largest N with GPU-estimated vertical-slash lists");
  app.add_option("--estimate", o.estimate, "vertical-slash: last queries that estimate");
  app.add_option("--vertical", o.vertical, "vertical-slash: key columns kept per head");
  app.add_option("--slash", o.slash, "vertical-slash: diagonals kept per head");
  std::string kernel = "auto";
  app.add_option("--kernel", kernel, "auto (the engine's: sm90ws on Hopper), sm90 (v3) or sm90ws (FA3-style)")
      ->check(CLI::IsMember({"auto", "sm90", "sm90ws"}));
  CLI11_PARSE(app, argc, argv);
  o.kernel = dc::resolved_prefill_kernel(*dc::prefill_kernel_named(kernel));
  std::sort(tokens.begin(), tokens.end());
  try {
    // The ceiling the work rates are held to, measured on this device in this run (cuBLASLt bf16).
    const deltainfer::cuda::HardwareRates rates = deltainfer::cuda::measure_hardware_rates();
    std::printf("bf16 GEMM %.1f TFLOP/s (cuBLASLt 8192^3), device copy %.3f TB/s, measured in this run\n",
                rates.gemm_tflops, rates.copy_tbps);
    std::printf("RESULT bench=gemm_rate tflops=%.1f\n", rates.gemm_tflops);
    for (const int n : tokens) run_size(n, o, rates.gemm_tflops);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sparse_prefill_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
