// Attention time per decode token over all 32 layers of a Llama-3-8B shape (GQA 32/8, d 128,
// batch 1), each policy captured as one CUDA graph of the whole per-token attention sequence and
// timed by CUDA events over graph replays (median):
//   dense      32 dense layers
//   DELTA      layers 0, 1 dense; Δ-layers 2 and 16 dense + selection (logits, page scores, top-k);
//              the other 28 layers sparse over the selected set (budget 2048, page 16, recency 128)
//   Quest      layers 0, 1 dense; 30 layers of bound update + page scoring + top-k per KV head +
//              sparse decode per KV head (budget 2048)
//   Streaming  one sink (64) + window (1984) set, 32 sparse layers
// Only one layer's KV cache is allocated (512K × 32 layers would be 64 GiB) and every layer reads
// it; each layer has its own page table, a rotation of one shuffled permutation, so the same
// logical tokens sit in different physical pages per layer and sparse layers do not find the
// previous layer's rows in L2. Dense layers stream far more than the 50 MB L2 at every context.
//
// --kv-dtype fp8 reads FP8 pools (codes with a scale per page and KV head); bytes and the % of the
// device-to-device copy rate count each dtype's page bytes (kv_pool_page_bytes).
//
//   build/h-delta/own/delta_decode_bench [--kv-dtype bf16|fp8|both]     # table + RESULT lines
#include <cuda_bf16.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <numeric>
#include <random>
#include <vector>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/decode_attention.h"
#include "backend/cuda/delta_decode.h"
#include "backend/cuda/device_buffer.h"
#include "backend/cuda/hardware_rates.h"
#include "bench_support.cuh"

namespace {

using namespace deltainfer::cuda;

constexpr int kLayers = 32;
constexpr int kHeads = 32;
constexpr int kKvHeads = 8;
constexpr int kDim = 128;
constexpr int kBudget = 2048;
constexpr int kDeltaLayerA = 2;
constexpr int kDeltaLayerB = 16;
constexpr int kFullLayers = 2;

// Median ms of one replay of the graph captured from `enqueue`.
float graph_median_ms(const std::function<void(cudaStream_t)>& enqueue, int repeats) {
  cudaStream_t stream;
  CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  enqueue(stream);  // warm-up outside the graph: module load, attribute setup
  CUDA_CHECK(cudaStreamSynchronize(stream));
  cudaGraph_t graph;
  cudaGraphExec_t exec;
  CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
  enqueue(stream);
  CUDA_CHECK(cudaStreamEndCapture(stream, &graph));
  CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
  for (int i = 0; i < 5; ++i) CUDA_CHECK(cudaGraphLaunch(exec, stream));
  cudaEvent_t start, stop;
  CUDA_CHECK(cudaEventCreate(&start));
  CUDA_CHECK(cudaEventCreate(&stop));
  std::vector<float> times;
  for (int i = 0; i < repeats; ++i) {
    CUDA_CHECK(cudaEventRecord(start, stream));
    CUDA_CHECK(cudaGraphLaunch(exec, stream));
    CUDA_CHECK(cudaEventRecord(stop, stream));
    CUDA_CHECK(cudaEventSynchronize(stop));
    float ms = 0.0f;
    CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
    times.push_back(ms);
  }
  CUDA_CHECK(cudaEventDestroy(start));
  CUDA_CHECK(cudaEventDestroy(stop));
  CUDA_CHECK(cudaGraphExecDestroy(exec));
  CUDA_CHECK(cudaGraphDestroy(graph));
  CUDA_CHECK(cudaStreamDestroy(stream));
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

struct Context {
  int kv_len;
  int pages;
  deltainfer::KvDtype dtype;
  DeviceBuffer<unsigned char> k, v;  // bf16 values or e4m3 codes
  DeviceBuffer<float> k_scales, v_scales;  // FP8: 1/64 for every (page, KV head)
  DeviceBuffer<__nv_bfloat16> q, out;
  DeviceBuffer<float> lse;
  DeviceBuffer<int32_t> tables;  // [kLayers][pages]
  DeviceBuffer<int32_t> lens;

  Context(int len, deltainfer::KvDtype kv_dtype)
      : kv_len(len),
        pages(len / kKvPageSize),
        dtype(kv_dtype),
        k(static_cast<size_t>(len) * kKvHeads * kDim * kv_value_bytes(kv_dtype)),
        v(k.size()),
        q(static_cast<size_t>(kHeads) * kDim),
        out(q.size()),
        lse(kHeads),
        tables(static_cast<size_t>(kLayers) * (len / kKvPageSize)),
        lens(1) {
    if (dtype == deltainfer::KvDtype::Bf16) {
      bench_support::fill_random(reinterpret_cast<__nv_bfloat16*>(k.data()), k.size() / 2, 1u);
      bench_support::fill_random(reinterpret_cast<__nv_bfloat16*>(v.data()), v.size() / 2, 2u);
    } else {
      bench_support::fill_random_fp8(k.data(), k.size(), 1u);
      bench_support::fill_random_fp8(v.data(), v.size(), 2u);
      const std::vector<float> scales(static_cast<size_t>(pages) * kKvHeads, 1.0f / 64);
      k_scales = to_device(scales);
      v_scales = to_device(scales);
    }
    bench_support::fill_random(q.data(), q.size(), 3u);
    CUDA_CHECK_LAUNCH();
    std::vector<int32_t> perm(static_cast<size_t>(pages));
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), std::mt19937(7));
    std::vector<int32_t> host(static_cast<size_t>(kLayers) * pages);
    const int shift = pages / kLayers + 1;
    for (int layer = 0; layer < kLayers; ++layer) {
      for (int i = 0; i < pages; ++i) {
        host[static_cast<size_t>(layer) * pages + i] = perm[static_cast<size_t>((i + layer * shift) % pages)];
      }
    }
    tables.upload(host);
    lens.upload({len});
  }
  const int32_t* table(int layer) const { return tables.data() + static_cast<size_t>(layer) * pages; }

  // Layer `layer`'s view of the cache: its own page table over the shared pools.
  PagedKv paged_kv(int layer) const {
    PagedKv kv;
    kv.k_pool = k.data();
    kv.v_pool = v.data();
    kv.dtype = dtype;
    kv.k_scales = k_scales.data();
    kv.v_scales = v_scales.data();
    kv.num_pages = pages;
    kv.page_table = table(layer);
    kv.page_table_stride = pages;
    kv.kv_lens = lens.data();
    kv.batch = 1;
    kv.max_kv_len = kv_len;
    kv.n_kv_heads = kKvHeads;
    kv.head_dim = kDim;
    return kv;
  }
  DecodeAttentionArgs dense_args(int layer, void* workspace, size_t bytes) {
    DecodeAttentionArgs a;
    a.q = q.data();
    a.kv = paged_kv(layer);
    a.n_heads = kHeads;
    a.softmax_scale = 0.088f;
    a.out = out.data();
    a.lse = lse.data();
    a.workspace = workspace;
    a.workspace_bytes = bytes;
    return a;
  }
  SparseDecodeArgs sparse_args(int layer, const TokenSet& set, void* workspace, size_t bytes) {
    SparseDecodeArgs a;
    a.q = q.data();
    a.kv = paged_kv(layer);
    a.set = set;
    a.n_heads = kHeads;
    a.softmax_scale = 0.088f;
    a.out = out.data();
    a.workspace = workspace;
    a.workspace_bytes = bytes;
    return a;
  }
};

constexpr int kMaxSweptSplits = 64;

struct Row {
  const char* policy;
  float ms;
  double bytes;
};

void run(int kv_len, deltainfer::KvDtype dtype, double copy_tbps) {
  Context ctx(kv_len, dtype);
  const char* kv_name = deltainfer::kv_dtype_name(dtype);
  const int sms = current_device_sm_count();
  // K and V bytes by dtype: a page's values and, in FP8, its scales (kv_pool_page_bytes).
  const double token_bytes = static_cast<double>(deltainfer::kv_pool_page_bytes(dtype, kKvHeads, kDim)) / kKvPageSize;
  const double layer_kv_bytes = 2.0 * kv_len * token_bytes;
  const double set_bytes = 2.0 * kBudget * token_bytes;
  const int repeats = kv_len >= (1 << 19) ? 15 : 40;

  const DecodeAttentionPlan dense_plan = plan_decode_attention(1, kHeads, kKvHeads, kDim, kv_len, sms);
  PageSelectConfig config;  // budget 2048, page 16, recency 128, sink, max over heads
  const DeltaSelectPlan delta_plan = plan_delta_select(1, kHeads, kKvHeads, kDim, kv_len, config, sms);
  const int capacity = token_set_capacity(config);
  const SparseDecodePlan shared_plan = plan_sparse_decode(1, kHeads, kKvHeads, kDim, capacity, 1, sms);
  const SparseDecodePlan per_head_plan = plan_sparse_decode(1, kHeads, kKvHeads, kDim, capacity, kKvHeads, sms);
  const QuestSelectPlan quest_plan = plan_quest_select(1, kHeads, kKvHeads, kDim, kv_len, config);
  const size_t sweep_bytes = plan_sparse_decode(1, kHeads, kKvHeads, kDim, capacity, 1, sms, kMaxSweptSplits).workspace_bytes;
  const size_t ws_bytes = std::max({dense_plan.workspace_bytes, delta_plan.workspace_bytes,
                                    shared_plan.workspace_bytes, per_head_plan.workspace_bytes, sweep_bytes});
  DeviceBuffer<unsigned char> ws(ws_bytes), quest_ws(quest_plan.workspace_bytes);
  DeviceBuffer<int32_t> indices(static_cast<size_t>(kKvHeads) * capacity), counts(kKvHeads);
  const TokenSet shared{indices.data(), counts.data(), capacity, 1};
  const TokenSet per_head{indices.data(), counts.data(), capacity, kKvHeads};
  DeviceBuffer<__nv_bfloat16> bounds(quest_bounds_elements(ctx.pages, kKvHeads, kDim));
  const QuestCache quest{ctx.paged_kv(0), bounds.data()};
  quest_build_bounds(quest, nullptr);  // indexed by physical page: one build serves every layer's table
  CUDA_CHECK(cudaDeviceSynchronize());

  auto dense_layer = [&](int layer, cudaStream_t s) { decode_attention(ctx.dense_args(layer, ws.data(), ws.bytes()), s); };
  auto sparse_layer = [&](int layer, const TokenSet& set, cudaStream_t s) {
    sparse_decode(ctx.sparse_args(layer, set, ws.data(), ws.bytes()), s);
  };
  auto delta_layer = [&](int layer, cudaStream_t s) {
    delta_decode_select(ctx.dense_args(layer, nullptr, 0), config, ws.data(), ws.bytes(), shared, s);
  };

  std::vector<Row> rows;
  rows.push_back({"dense", graph_median_ms([&](cudaStream_t s) {
                    for (int layer = 0; layer < kLayers; ++layer) dense_layer(layer, s);
                  }, repeats), kLayers * layer_kv_bytes});
  rows.push_back({"delta", graph_median_ms([&](cudaStream_t s) {
                    for (int layer = 0; layer < kLayers; ++layer) {
                      if (layer < kFullLayers) {
                        dense_layer(layer, s);
                      } else if (layer == kDeltaLayerA || layer == kDeltaLayerB) {
                        delta_layer(layer, s);
                      } else {
                        sparse_layer(layer, shared, s);
                      }
                    }
                  }, repeats), 4 * layer_kv_bytes + 28 * set_bytes});
  rows.push_back({"quest", graph_median_ms([&](cudaStream_t s) {
                    for (int layer = 0; layer < kLayers; ++layer) {
                      if (layer < kFullLayers) {
                        dense_layer(layer, s);
                        continue;
                      }
                      QuestCache layer_cache = quest;
                      layer_cache.kv.page_table = ctx.table(layer);
                      quest_append_bounds(layer_cache, s);
                      quest_select(ctx.q.data(), kHeads, layer_cache, config, quest_ws.data(), quest_ws.bytes(),
                                   per_head, s);
                      sparse_layer(layer, per_head, s);
                    }
                  }, repeats), 2 * layer_kv_bytes + 30 * set_bytes});
  rows.push_back({"streaming", graph_median_ms([&](cudaStream_t s) {
                    streaming_select(ctx.lens.data(), 1, 64, kBudget - 64, shared, s);
                    for (int layer = 0; layer < kLayers; ++layer) sparse_layer(layer, shared, s);
                  }, repeats), kLayers * set_bytes});
  // Pieces, one layer each: where DELTA's time goes.
  const float one_dense = graph_median_ms([&](cudaStream_t s) { dense_layer(0, s); }, repeats);
  const float one_delta = graph_median_ms([&](cudaStream_t s) { delta_layer(kDeltaLayerA, s); }, repeats);
  const float one_dense_logits = graph_median_ms([&](cudaStream_t s) {
    DecodeAttentionArgs a = ctx.dense_args(kDeltaLayerA, ws.data(), ws.bytes());
    a.logits = reinterpret_cast<float*>(ws.data() + delta_plan.logits_offset);
    a.logits_stride = delta_plan.logits_stride;
    decode_attention(a, s);
  }, repeats);
  const float one_sparse = graph_median_ms([&](cudaStream_t s) { sparse_layer(5, shared, s); }, repeats);
  const float one_quest = graph_median_ms([&](cudaStream_t s) {
    quest_select(ctx.q.data(), kHeads, quest, config, quest_ws.data(), quest_ws.bytes(), per_head, s);
  }, repeats);

  // Sparse-layer latency against the split count (28 sparse layers in one graph, as in DELTA):
  // the set is small, so this is latency, not bandwidth; the plan's choice is marked.
  if (kv_len == 131072) {
    const auto us_per_sparse_layer = [&](int splits, SplitMerge merge) {
      const float ms = graph_median_ms([&](cudaStream_t s) {
        for (int layer = 0; layer < kLayers - 4; ++layer) {
          SparseDecodeArgs a = ctx.sparse_args(layer, shared, ws.data(), ws.bytes());
          a.num_splits = splits;
          a.merge = merge;
          sparse_decode(a, s);
        }
      }, repeats);
      return ms * 1e3 / (kLayers - 4);
    };
    for (int splits = 4; splits <= kMaxSweptSplits; splits *= 2) {
      std::printf("RESULT bench=sparse_split_sweep kv_dtype=%s kv_len=%d splits=%d us_per_layer=%.2f planned=%d\n",
                  kv_name, kv_len, splits,
                  us_per_sparse_layer(splits, SplitMerge::kCombineKernel), shared_plan.num_splits);
    }
    for (int splits = 2; splits <= 8; splits *= 2) {
      std::printf("RESULT bench=sparse_split_sweep kv_dtype=%s kv_len=%d splits=%d clustered=1 us_per_layer=%.2f\n",
                  kv_name, kv_len, splits,
                  us_per_sparse_layer(splits, SplitMerge::kCluster));
    }
  }

  const float dense_ms = rows[0].ms;
  for (const Row& r : rows) {
    const double tbps = r.bytes / (r.ms * 1e-3) / 1e12;
    std::printf("| %-4s | %7d | %-9s | %9.3f | %7.2fx | %6.2f | %5.1f%% |\n", kv_name, kv_len, r.policy, r.ms,
                dense_ms / r.ms, tbps, 100.0 * tbps / copy_tbps);
    std::printf("RESULT bench=delta_decode kv_dtype=%s kv_len=%d policy=%s ms_per_token=%.4f speedup=%.2f tbps=%.3f "
                "pct_copy=%.1f\n",
                kv_name, kv_len, r.policy, r.ms, dense_ms / r.ms, tbps, 100.0 * tbps / copy_tbps);
  }
  std::printf("RESULT bench=delta_decode_layer kv_dtype=%s kv_len=%d dense_us=%.1f dense_logits_us=%.1f delta_select_us=%.1f sparse_us=%.1f "
              "quest_select_us=%.1f dense_splits=%d sparse_splits=%d\n",
              kv_name, kv_len, one_dense * 1e3, one_dense_logits * 1e3, one_delta * 1e3, one_sparse * 1e3, one_quest * 1e3, dense_plan.num_splits,
              shared_plan.num_splits);
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<deltainfer::KvDtype> dtypes = bench_support::kv_dtypes_from_args(argc, argv);
  try {
    cudaDeviceProp prop{};
    CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
    const double copy_tbps = deltainfer::cuda::measure_copy_tbps();
    std::printf("device %s, %d SMs; Llama-3-8B attention (32 layers, 32/8 heads, d 128), batch 1, budget %d; "
                "device-to-device copy %.3f TB/s (read + write)\n",
                prop.name, prop.multiProcessorCount, kBudget, copy_tbps);
    std::printf("| KV   | kv_len  | policy    | ms/token  | speedup  | TB/s   | of copy |\n");
    std::printf("|------|---------|-----------|-----------|----------|--------|---------|\n");
    for (const deltainfer::KvDtype dtype : dtypes) {
      for (int len : {32768, 131072, 524288}) run(len, dtype, copy_tbps);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "delta_decode_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
