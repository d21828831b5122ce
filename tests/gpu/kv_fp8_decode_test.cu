// The FP8 KV readers against the bf16 readers of the values they should see (kv_fp8_cache.h: an
// FP8 cache built by the CPU twin of the append, prefill then decode rows, pages rescaled by later
// larger rows, NaN-poisoned unwritten rows, spare pages and scales, shuffled page tables):
//   - dense split-KV decode (and its logits, through DELTA's selection), sparse decode over shared
//     and per-KV-head sets with every split merge, Quest's bounds (build, and append across
//     rescales) and selection: FP8 on the codes vs bf16 on the dequantized pool;
//   - dense decode also against the f64 CPU twin on the dequantized values;
//   - the FP8 -> bf16 staging copy against its CPU twin, and decode over the staging pool.
// Tolerances: FP8 vs bf16-of-the-dequantized. The page scales are powers of two applied exactly and
// every product q_i k_i is the same, but the FP8 kernel feeds the head dimension to its MMA k-steps
// in another grouping (decode_split.cuh: 16 dims per 16-byte load instead of 8), so a score's f32
// sum rounds differently wherever a partial sum needs more than 24 bits. That is rare for small
// values and common for large ones (the H200 showed an LSE 1.2e-4 apart on a sequence of
// magnitude-50 keys at d 128, outputs still equal). So: LSEs within score_rounding_bound(), page
// scores within twice it, bf16 outputs within one bf16 rounding step per element (a score that
// moves at all can flip the last bit); selections and Quest bounds exactly. Against the f64 twin:
// bf16 output rel L2 < 1e-2, LSE abs < 2e-3, as for bf16 pools (decode_attention_test.cu). The
// staging copy: exact.
#include <cuda_bf16.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <iostream>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "backend/cuda/decode_attention.h"
#include "backend/cuda/delta_decode.h"
#include "backend/cuda/device_buffer.h"
#include "backend/cuda/kv_fp8_stage.h"
#include "backend/cuda/paged_kv.h"
#include "backend/cuda/quest_decode.h"
#include "core/error.h"
#include "core/kv_fp8_page.h"
#include "gpu/gpu_test_support.h"
#include "gpu/kv_fp8_cache.h"
#include "gpu/reference_attention.h"
#include "model/model_config.h"

namespace deltainfer::cuda {
namespace {

// How far a score (natural-log units, as the LSE) of the FP8 kernel may be from the bf16 kernel's
// on the dequantized values (see the file comment): per MMA k-step and once more, 2 ulps
// (truncation inside the tensor core, then the rounding) of the largest partial sum, which is at
// most sum_i |q_i k_i|; the largest such sum over the case's heads and keys. An LSE moves by at
// most the largest move of its scores. q: [batch][n_heads][head_dim] as uploaded.
double score_rounding_bound(const std::vector<float>& q, const test::Fp8TestCache& cache, int n_heads, float scale) {
  const test::PagedCacheHost& deq = cache.dequantized();
  const int d = deq.head_dim;
  const int group = n_heads / deq.n_kv_heads;
  double largest = 0.0;
  for (size_t s = 0; s < cache.lens().size(); ++s) {
    const int32_t* pages = cache.pages(static_cast<int>(s));
    for (int h = 0; h < n_heads; ++h) {
      const float* qh = q.data() + (s * static_cast<size_t>(n_heads) + static_cast<size_t>(h)) * static_cast<size_t>(d);
      for (int j = 0; j < cache.lens()[s]; ++j) {
        const float* kj = deq.k.data() + deq.index(pages[j / deq.page_size], h / group, j % deq.page_size);
        double sum = 0.0;
        for (int i = 0; i < d; ++i) sum += std::fabs(static_cast<double>(qh[i]) * kj[i]);
        largest = std::max(largest, sum);
      }
    }
  }
  const int roundings = 2 * (d / 16 + 1);
  return static_cast<double>(scale) * roundings * std::ldexp(1.0, -23) * largest;
}

// Elements of two bf16 results (as floats) further apart than one bf16 rounding step (2^-7 of
// the larger magnitude bounds its last-bit step): 0 when they differ at most in rounding.
int beyond_one_bf16_step(const std::vector<float>& a, const std::vector<float>& b) {
  int count = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double step = std::ldexp(std::max(std::fabs(static_cast<double>(a[i])), std::fabs(static_cast<double>(b[i]))), -7);
    if (!(std::fabs(static_cast<double>(a[i]) - b[i]) <= step)) ++count;
  }
  return count;
}

struct Fp8Case {
  std::string name;
  std::vector<int> prefill;  // per sequence; each then decodes kDecodeSteps rows (none when 0)
  int n_heads;
  int n_kv_heads;
  int head_dim;
};
std::ostream& operator<<(std::ostream& os, const Fp8Case& c) { return os << c.name; }

constexpr int kDecodeSteps = 23;

// Builds the case's cache: sequence s prefills c.prefill[s] rows then decodes (an empty one stays
// empty), magnitudes varying over sequences (0.01, 1, 50) so scales span binades.
test::Fp8TestCache make_cache(const Fp8Case& c, std::mt19937_64& rng) {
  std::vector<int> capacity;
  for (int n : c.prefill) capacity.push_back(n + kDecodeSteps);
  test::Fp8TestCache cache(capacity, c.n_kv_heads, c.head_dim, rng);
  const float magnitudes[] = {0.01f, 1.0f, 50.0f};
  for (size_t s = 0; s < c.prefill.size(); ++s) {
    if (c.prefill[s] == 0) continue;  // an empty sequence stays empty
    cache.prefill_then_decode(static_cast<int>(s), c.prefill[s], kDecodeSteps, magnitudes[s % 3]);
  }
  cache.upload();
  return cache;
}

struct DecodeRun {
  std::vector<float> out, lse;
};

DecodeRun run_dense(const PagedKv& kv, const DeviceBuffer<__nv_bfloat16>& q, int n_heads, float scale) {
  const DecodeAttentionPlan plan =
      plan_decode_attention(kv.batch, n_heads, kv.n_kv_heads, kv.head_dim, kv.max_kv_len, current_device_sm_count());
  DeviceBuffer<unsigned char> workspace(plan.workspace_bytes);
  DeviceBuffer<__nv_bfloat16> out(q.size());
  DeviceBuffer<float> lse(static_cast<size_t>(kv.batch) * n_heads);
  workspace.fill_bytes(0xFF);
  out.fill_bytes(0xFF);
  lse.fill_bytes(0xFF);
  DecodeAttentionArgs args;
  args.q = q.data();
  args.kv = kv;
  args.n_heads = n_heads;
  args.softmax_scale = scale;
  args.out = out.data();
  args.lse = lse.data();
  args.workspace = workspace.data();
  args.workspace_bytes = workspace.bytes();
  decode_attention(args, nullptr);
  CUDA_CHECK(cudaDeviceSynchronize());
  return {test::to_float(out.download()), lse.download()};
}

// Max |a - b| over LSEs, -inf matching -inf.
double lse_difference(const std::vector<float>& a, const std::vector<float>& b) {
  double worst = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::isinf(a[i]) || std::isinf(b[i])) {
      EXPECT_EQ(a[i], b[i]) << "lse[" << i << "]";
      continue;
    }
    worst = std::max(worst, std::fabs(static_cast<double>(a[i]) - b[i]));
  }
  return worst;
}

class Fp8DenseDecodeTest : public ::testing::TestWithParam<Fp8Case> {};

TEST_P(Fp8DenseDecodeTest, MatchesBf16OnDequantizedValuesAndTheCpuTwin) {
  const Fp8Case& c = GetParam();
  std::mt19937_64 rng(test::fresh_seed("fp8 dense decode " + c.name));
  const test::Fp8TestCache cache = make_cache(c, rng);
  const int batch = static_cast<int>(c.prefill.size());
  const std::vector<float> q = test::random_bf16_values(static_cast<size_t>(batch) * c.n_heads * c.head_dim, rng);
  const auto d_q = to_device(test::to_bf16(q));
  const float scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));

  const DecodeRun fp8 = run_dense(cache.fp8(), d_q, c.n_heads, scale);
  const DecodeRun bf16 = run_dense(cache.bf16(), d_q, c.n_heads, scale);
  for (size_t i = 0; i < fp8.out.size(); ++i) ASSERT_FALSE(std::isnan(fp8.out[i])) << "out[" << i << "]";
  const double vs_bf16 = test::relative_l2(fp8.out, bf16.out);
  const double lse_vs_bf16 = lse_difference(fp8.lse, bf16.lse);

  std::vector<double> want(q.size()), want_lse(fp8.lse.size());
  for (int s = 0; s < batch; ++s) {
    const size_t row = static_cast<size_t>(s) * c.n_heads;
    test::reference_decode_attention(q, row * c.head_dim, cache.dequantized(), cache.pages(s),
                                     cache.lens()[static_cast<size_t>(s)], c.n_heads, scale, want, row * c.head_dim,
                                     want_lse, row);
  }
  const double vs_cpu = test::relative_l2(fp8.out, want);
  double lse_vs_cpu = 0.0;
  for (size_t i = 0; i < want_lse.size(); ++i) {
    if (!std::isinf(want_lse[i])) lse_vs_cpu = std::max(lse_vs_cpu, std::fabs(fp8.lse[i] - want_lse[i]));
  }
  const double lse_bound = score_rounding_bound(q, cache, c.n_heads, scale);
  std::cout << c.name << ": rescaled slabs " << cache.rescaled_slabs() << ", vs bf16 rel L2 " << vs_bf16
            << " lse " << lse_vs_bf16 << " (bound " << lse_bound << "), vs f64 twin rel L2 " << vs_cpu << " lse "
            << lse_vs_cpu << "\n";
  EXPECT_EQ(beyond_one_bf16_step(fp8.out, bf16.out), 0);
  EXPECT_LE(lse_vs_bf16, lse_bound);
  EXPECT_LT(vs_cpu, 1e-2);
  EXPECT_LT(lse_vs_cpu, 2e-3);
  EXPECT_GT(cache.rescaled_slabs(), 0) << "the case should rescale pages";
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, Fp8DenseDecodeTest,
    ::testing::Values(Fp8Case{"d128_g4_len24", {1}, 32, 8, 128},
                      Fp8Case{"d128_g1_mha_41", {18}, 8, 8, 128},
                      Fp8Case{"d64_g2_batch3_mixed", {40, 1000, 64}, 8, 4, 64},
                      Fp8Case{"d128_g4_batch4_with_empty", {3000, 0, 130, 777}, 32, 8, 128},
                      Fp8Case{"d64_g8", {5000}, 16, 2, 64},
                      Fp8Case{"d128_g5", {2049}, 20, 4, 128},
                      Fp8Case{"d128_g16_two_head_tiles", {1500}, 16, 1, 128},
                      Fp8Case{"d128_g4_len40000", {40000}, 32, 8, 128}),
    [](const ::testing::TestParamInfo<Fp8Case>& info) { return info.param.name; });

// DELTA's Δ-layer pass reads FP8 through the logits variant: page scores, the selected sets and
// the sparse decode over them must be those of the bf16 pool.
TEST(Fp8DeltaDecode, SelectionAndSparseDecodeMatchBf16OnDequantizedValues) {
  std::mt19937_64 rng(test::fresh_seed("fp8 delta"));
  const Fp8Case c{"delta", {9000, 300, 4000}, 32, 8, 128};
  const test::Fp8TestCache cache = make_cache(c, rng);
  const int batch = 3;
  const std::vector<float> q = test::random_bf16_values(static_cast<size_t>(batch) * 32 * 128, rng, 2.0f);
  const auto d_q = to_device(test::to_bf16(q));
  PageSelectConfig config;
  config.budget = 1024;
  const DeltaSelectPlan plan =
      plan_delta_select(batch, 32, 8, 128, cache.max_len(), config, current_device_sm_count());
  const int capacity = token_set_capacity(config);
  struct Result {
    std::vector<float> page_scores, out;
    std::vector<int32_t> indices, counts;
  };
  auto run = [&](const PagedKv& kv) {
    DeviceBuffer<unsigned char> workspace(plan.workspace_bytes);
    DeviceBuffer<__nv_bfloat16> out(static_cast<size_t>(batch) * 32 * 128);
    DeviceBuffer<float> lse(static_cast<size_t>(batch) * 32);
    DeviceBuffer<int32_t> indices(static_cast<size_t>(batch) * capacity), counts(static_cast<size_t>(batch));
    workspace.fill_bytes(0xFF);
    indices.fill_bytes(0x7F);
    DecodeAttentionArgs dense;
    dense.q = d_q.data();
    dense.kv = kv;
    dense.n_heads = 32;
    dense.softmax_scale = 0.088f;
    dense.out = out.data();
    dense.lse = lse.data();
    const TokenSet set{indices.data(), counts.data(), capacity, 1};
    delta_decode_select(dense, config, workspace.data(), workspace.bytes(), set, nullptr);
    CUDA_CHECK(cudaDeviceSynchronize());
    Result r;
    const std::vector<unsigned char> raw = workspace.download();
    const auto* scores = reinterpret_cast<const float*>(raw.data() + plan.page_scores_offset);
    r.page_scores.assign(scores, scores + static_cast<size_t>(batch) * plan.max_pages);
    r.indices = indices.download();
    r.counts = counts.download();
    const SparseDecodePlan sparse = plan_sparse_decode(batch, 32, 8, 128, capacity, 1, current_device_sm_count());
    DeviceBuffer<unsigned char> sparse_ws(sparse.workspace_bytes);
    SparseDecodeArgs args;
    args.q = d_q.data();
    args.kv = kv;
    args.set = set;
    args.n_heads = 32;
    args.softmax_scale = 0.088f;
    args.out = out.data();
    args.workspace = sparse_ws.data();
    args.workspace_bytes = sparse_ws.bytes();
    out.fill_bytes(0xFF);
    sparse_decode(args, nullptr);
    CUDA_CHECK(cudaDeviceSynchronize());
    r.out = test::to_float(out.download());
    return r;
  };
  const Result fp8 = run(cache.fp8());
  const Result bf16 = run(cache.bf16());
  EXPECT_EQ(fp8.counts, bf16.counts);
  EXPECT_EQ(fp8.indices, bf16.indices) << "FP8 selected other tokens than bf16 on the same values";
  double worst = 0.0;
  for (size_t i = 0; i < fp8.page_scores.size(); ++i) {
    if (std::isinf(bf16.page_scores[i]) || std::isnan(bf16.page_scores[i])) continue;  // forced or past the end
    worst = std::max(worst, std::fabs(static_cast<double>(fp8.page_scores[i]) - bf16.page_scores[i]));
  }
  const double out_err = test::relative_l2(fp8.out, bf16.out);
  // A page score sums probabilities (at most 1), each moved by at most its score's move and the LSE's.
  const double page_bound = 2.0 * score_rounding_bound(q, cache, 32, 0.088f);
  std::cout << "delta: page score max abs diff " << worst << " (bound " << page_bound << "), sparse out rel L2 "
            << out_err << "\n";
  EXPECT_LE(worst, page_bound);
  EXPECT_EQ(beyond_one_bf16_step(fp8.out, bf16.out), 0);
}

// Sparse decode over random per-KV-head sets (Quest's shape) and one shared set, every merge.
TEST(Fp8SparseDecode, EveryMergeMatchesBf16OnDequantizedValues) {
  std::mt19937_64 rng(test::fresh_seed("fp8 sparse"));
  for (const Fp8Case& c : {Fp8Case{"d128_g4", {6000, 90, 1}, 32, 8, 128}, Fp8Case{"d64_g3", {2500, 700}, 6, 2, 64}}) {
    const test::Fp8TestCache cache = make_cache(c, rng);
    const int batch = static_cast<int>(c.prefill.size());
    const auto d_q = to_device(test::to_bf16(
        test::random_bf16_values(static_cast<size_t>(batch) * c.n_heads * c.head_dim, rng)));
    for (const int sets_per_seq : {1, c.n_kv_heads}) {
      const int capacity = 700;
      std::vector<int32_t> indices(static_cast<size_t>(batch) * sets_per_seq * capacity, -1);
      std::vector<int32_t> counts(static_cast<size_t>(batch) * sets_per_seq, 0);
      for (int s = 0; s < batch; ++s) {
        for (int h = 0; h < sets_per_seq; ++h) {
          std::vector<int32_t> all(static_cast<size_t>(cache.lens()[static_cast<size_t>(s)]));
          std::iota(all.begin(), all.end(), 0);
          std::shuffle(all.begin(), all.end(), rng);
          const int count = std::min<int>(static_cast<int>(all.size()), 1 + static_cast<int>(rng() % capacity));
          std::sort(all.begin(), all.begin() + count);
          std::copy(all.begin(), all.begin() + count, indices.begin() + (s * sets_per_seq + h) * capacity);
          counts[static_cast<size_t>(s * sets_per_seq + h)] = count;
        }
      }
      auto d_indices = to_device(indices);
      auto d_counts = to_device(counts);
      const TokenSet set{d_indices.data(), d_counts.data(), capacity, sets_per_seq};
      size_t workspace_bytes = 0;
      for (const int splits : {0, 8}) {
        workspace_bytes = std::max(workspace_bytes, plan_sparse_decode(batch, c.n_heads, c.n_kv_heads, c.head_dim,
                                                                       capacity, sets_per_seq,
                                                                       current_device_sm_count(), splits)
                                                        .workspace_bytes);
      }
      DeviceBuffer<unsigned char> workspace(workspace_bytes);
      struct Variant {
        SplitMerge merge;
        int splits;
        const char* name;
      };
      for (const Variant& v :
           {Variant{SplitMerge::kAuto, 0, "auto"}, Variant{SplitMerge::kCombineKernel, 8, "combine"},
            Variant{SplitMerge::kCluster, 2, "cluster 2"}, Variant{SplitMerge::kCluster, 8, "cluster 8"}}) {
        auto run = [&](const PagedKv& kv) {
          DeviceBuffer<__nv_bfloat16> out(d_q.size());
          out.fill_bytes(0xFF);
          SparseDecodeArgs args;
          args.q = d_q.data();
          args.kv = kv;
          args.set = set;
          args.n_heads = c.n_heads;
          args.softmax_scale = 0.1f;
          args.out = out.data();
          args.workspace = workspace.data();
          args.workspace_bytes = workspace.bytes();
          args.merge = v.merge;
          args.num_splits = v.splits;
          sparse_decode(args, nullptr);
          CUDA_CHECK(cudaDeviceSynchronize());
          return test::to_float(out.download());
        };
        const std::vector<float> fp8 = run(cache.fp8());
        const std::vector<float> bf16 = run(cache.bf16());
        for (size_t i = 0; i < fp8.size(); ++i) {
          ASSERT_FALSE(std::isnan(fp8[i])) << c.name << " out[" << i << "]";
        }
        const double err = test::relative_l2(fp8, bf16);
        std::cout << c.name << " sets/seq " << sets_per_seq << " " << v.name << ": rel L2 " << err << "\n";
        EXPECT_EQ(beyond_one_bf16_step(fp8, bf16), 0) << c.name << " sets/seq " << sets_per_seq << " " << v.name;
      }
    }
  }
}

// Entries where a and b differ (sizes must match).
int differing(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  int count = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) count += a[i] == b[i] ? 0 : 1;
  return count;
}

// Device bounds of sequence s's Quest pages in `bounds` (the others are never read), as floats.
std::vector<float> sequence_bounds(const DeviceBuffer<__nv_bfloat16>& bounds, const test::Fp8TestCache& cache, int s,
                                   int n_kv, int d) {
  constexpr int kSubPages = kKvPageSize / kQuestPage;
  const std::vector<float> all = test::to_float(bounds.download());
  std::vector<float> picked;
  const int len = cache.lens()[static_cast<size_t>(s)];
  for (int qp = 0; qp < (len + kQuestPage - 1) / kQuestPage; ++qp) {
    const int page = cache.pages(s)[qp / kSubPages];
    for (int h = 0; h < n_kv; ++h) {
      // [pool page][KV head][sub-page][min, max][d] (delta_decode.h)
      const size_t at = ((static_cast<size_t>(page) * n_kv + h) * kSubPages + qp % kSubPages) * 2 * d;
      picked.insert(picked.end(), all.begin() + static_cast<std::ptrdiff_t>(at),
                    all.begin() + static_cast<std::ptrdiff_t>(at + 2 * static_cast<size_t>(d)));
    }
  }
  return picked;
}

// Quest's bounds on FP8: built after a prefill, then appended one decode row at a time while later
// larger rows rescale pages; after every step they must equal a fresh build on the bf16 pool of the
// dequantized values, and the selection from them must be the bf16 one.
TEST(Fp8Quest, BoundsAcrossRescalesAndSelectionMatchBf16OnDequantizedValues) {
  std::mt19937_64 rng(test::fresh_seed("fp8 quest"));
  const std::vector<int> prefill = {3001, 200};
  const int n_kv = 4, d = 128, n_heads = 16, steps = 40;
  test::Fp8TestCache cache({prefill[0] + steps, prefill[1] + steps}, n_kv, d, rng);
  for (int s = 0; s < 2; ++s) cache.append(s, prefill[static_cast<size_t>(s)], 1.0f);
  cache.upload();
  const size_t elements = quest_bounds_elements(cache.num_pages(), n_kv, d);
  DeviceBuffer<__nv_bfloat16> fp8_bounds(elements), bf16_bounds(elements);
  fp8_bounds.fill_bytes(0xFF);
  quest_build_bounds(QuestCache{cache.fp8(), fp8_bounds.data()}, nullptr);
  const auto d_q = to_device(test::to_bf16(test::random_bf16_values(static_cast<size_t>(2) * n_heads * d, rng)));
  PageSelectConfig config;
  config.budget = 512;
  config.page = kQuestPage;
  config.recency = 1;
  config.keep_sink = false;
  for (int step = 0; step <= steps; ++step) {
    if (step > 0) {
      for (int s = 0; s < 2; ++s) cache.append(s, 1, step % 5 == 4 ? 16.0f : 1.0f);
      cache.upload();
      quest_append_bounds(QuestCache{cache.fp8(), fp8_bounds.data()}, nullptr);
    }
    bf16_bounds.fill_bytes(0xFF);
    quest_build_bounds(QuestCache{cache.bf16(), bf16_bounds.data()}, nullptr);
    CUDA_CHECK(cudaDeviceSynchronize());
    for (int s = 0; s < 2; ++s) {
      ASSERT_EQ(differing(sequence_bounds(fp8_bounds, cache, s, n_kv, d),
                          sequence_bounds(bf16_bounds, cache, s, n_kv, d)),
                0)
          << "step " << step << " sequence " << s << ": FP8 bounds differ from the bf16 build of the same values";
    }
  }
  EXPECT_GT(cache.rescaled_slabs(), 0) << "the decode rows should rescale pages";
  const QuestSelectPlan plan = plan_quest_select(2, n_heads, n_kv, d, cache.max_len(), config);
  const int capacity = token_set_capacity(config);
  auto select = [&](const PagedKv& kv, DeviceBuffer<__nv_bfloat16>& bounds) {
    DeviceBuffer<unsigned char> workspace(plan.workspace_bytes);
    DeviceBuffer<int32_t> indices(static_cast<size_t>(2) * n_kv * capacity), counts(static_cast<size_t>(2) * n_kv);
    quest_select(d_q.data(), n_heads, QuestCache{kv, bounds.data()}, config, workspace.data(), workspace.bytes(),
                 TokenSet{indices.data(), counts.data(), capacity, n_kv}, nullptr);
    CUDA_CHECK(cudaDeviceSynchronize());
    std::vector<int32_t> all = indices.download();
    const std::vector<int32_t> c = counts.download();
    all.insert(all.end(), c.begin(), c.end());
    return all;
  };
  EXPECT_EQ(select(cache.fp8(), fp8_bounds), select(cache.bf16(), bf16_bounds));
}

// The transformer's owner of the bounds (QuestBounds) over FP8 pools: a rebuild after a prefill and
// the in-graph append across rescales give the kernel's bounds of the dequantized keys.
TEST(Fp8Quest, QuestBoundsOwnerKeepsFp8LayersCurrent) {
  std::mt19937_64 rng(test::fresh_seed("fp8 quest owner"));
  model::ModelConfig model;
  model.n_layers = 4;
  model.n_heads = 16;
  model.n_kv_heads = 4;
  model.head_dim = 64;
  test::Fp8TestCache cache({1500}, model.n_kv_heads, model.head_dim, rng);
  cache.append(0, 1000, 1.0f);
  cache.upload();
  // Every layer reads the one test pool (the bounds are per layer all the same).
  QuestBounds bounds(model, std::vector<PagedKv>(static_cast<size_t>(model.n_layers), cache.fp8()), cache.stride());
  attention::DecodeConfig decode;
  decode.kind = attention::DecodeKind::Quest;
  decode.full_layers = 1;
  bounds.ensure_layers(decode);
  bounds.rebuild_stale(0, cache.pages(0), cache.lens()[0], nullptr);
  DeviceBuffer<__nv_bfloat16> want(quest_bounds_elements(cache.num_pages(), model.n_kv_heads, model.head_dim));
  int layers_with_bounds = 0;
  for (int step = 0; step <= 30; ++step) {
    if (step > 0) {
      cache.append(0, 1, step % 5 == 4 ? 16.0f : 1.0f);
      cache.upload();
      const PagedKv kv = cache.fp8();
      for (int layer = 0; layer < model.n_layers; ++layer) {
        bounds.append(layer, kv.page_table, kv.page_table_stride, kv.kv_lens, kv.max_kv_len, 1, nullptr);
      }
      bounds.appended(0, cache.lens()[0]);
    }
    quest_build_bounds(QuestCache{cache.bf16(), want.data()}, nullptr);
    CUDA_CHECK(cudaDeviceSynchronize());
    const std::vector<float> expected = sequence_bounds(want, cache, 0, model.n_kv_heads, model.head_dim);
    layers_with_bounds = 0;
    for (int layer = 0; layer < model.n_layers; ++layer) {
      __nv_bfloat16* layer_bounds = bounds.bounds(layer);
      if (layer_bounds == nullptr) continue;
      ++layers_with_bounds;
      DeviceBuffer<__nv_bfloat16> copy(want.size());
      CUDA_CHECK(cudaMemcpy(copy.data(), layer_bounds, copy.bytes(), cudaMemcpyDeviceToDevice));
      ASSERT_EQ(differing(sequence_bounds(copy, cache, 0, model.n_kv_heads, model.head_dim), expected), 0)
          << "step " << step << " layer " << layer;
    }
  }
  EXPECT_EQ(layers_with_bounds, model.n_layers - decode.full_layers) << "Quest keeps bounds on its sparse layers";
  EXPECT_GT(cache.rescaled_slabs(), 0);
}

// CPU twin of fp8_stage_pages: staging page i is pool page pages[i] dequantized by core's twin
// (fp8_dequantize), rounded to bf16, or NaN for an id outside the pool. Checks that the rounding is
// exact (the header's claim) on every finite value.
std::vector<float> reference_stage(const test::Fp8TestCache& cache, const std::vector<int32_t>& pages, bool values) {
  const test::PagedCacheHost& host = cache.dequantized();
  const size_t slab = static_cast<size_t>(kKvPageSize) * host.head_dim;
  std::vector<float> staged(pages.size() * host.n_kv_heads * slab, NAN);
  for (size_t i = 0; i < pages.size(); ++i) {
    if (pages[i] < 0 || pages[i] >= cache.num_pages()) continue;
    for (int h = 0; h < host.n_kv_heads; ++h) {
      const size_t src = static_cast<size_t>(pages[i]) * host.n_kv_heads + h;
      float* dst = staged.data() + (i * host.n_kv_heads + h) * slab;
      fp8_dequantize((values ? cache.v_codes() : cache.k_codes()).data() + src * slab,
                     (values ? cache.v_scales() : cache.k_scales())[src], static_cast<int64_t>(slab), dst);
      for (size_t j = 0; j < slab; ++j) {
        const float rounded = test::round_bf16(dst[j]);
        EXPECT_TRUE(std::isnan(dst[j]) || rounded == dst[j]) << "a dequantized value is not a bf16 value";
        dst[j] = rounded;
      }
    }
  }
  return staged;
}

// The staging copy against its CPU twin (fp8_dequantize, rounded to bf16: exact), an out-of-pool
// page id staged as NaN, and decode over the staging pool through staging_tables() equal to FP8
// decode.
TEST(Fp8Staging, DequantizesListedPagesExactlyAndServesDecodeThroughItsTable) {
  std::mt19937_64 rng(test::fresh_seed("fp8 staging"));
  for (const int d : {64, 128}) {
    const Fp8Case c{"staging", {700, 64, 1300}, 8, 2, d};
    const test::Fp8TestCache cache = make_cache(c, rng);
    const int batch = 3;
    std::vector<int> needed;
    for (int len : cache.lens()) needed.push_back((len + kKvPageSize - 1) / kKvPageSize);
    StagingTables tables = staging_tables(cache.table().data(), cache.stride(), needed);
    ASSERT_EQ(tables.pages.size(), static_cast<size_t>(std::accumulate(needed.begin(), needed.end(), 0)));
    tables.pages.push_back(cache.num_pages());  // one id past the pool: must stage NaN, read nothing
    const int n_pages = static_cast<int>(tables.pages.size());
    const size_t slab = static_cast<size_t>(kKvPageSize) * d;
    const size_t stage_values = static_cast<size_t>(n_pages) * c.n_kv_heads * slab;
    DeviceBuffer<__nv_bfloat16> k_stage(stage_values), v_stage(stage_values);
    auto d_pages = to_device(tables.pages);
    Fp8StageArgs args;
    args.source = cache.fp8();
    args.pages = d_pages.data();
    args.n_pages = n_pages;
    args.k_stage = k_stage.data();
    args.v_stage = v_stage.data();
    fp8_stage_pages(args, nullptr);
    CUDA_CHECK(cudaDeviceSynchronize());
    int mismatches = 0;
    for (const bool values : {false, true}) {
      const std::vector<float> got = test::to_float((values ? v_stage : k_stage).download());
      const std::vector<float> want = reference_stage(cache, tables.pages, values);
      for (size_t j = 0; j < got.size(); ++j) {
        if (!(got[j] == want[j] || (std::isnan(got[j]) && std::isnan(want[j])))) ++mismatches;
      }
    }
    EXPECT_EQ(mismatches, 0) << "head_dim " << d;

    // Decode through the staging pool and its table: what the FP8 decode computes.
    auto d_stage_table = to_device(tables.table);
    PagedKv staged = cache.bf16();
    staged.k_pool = k_stage.data();
    staged.v_pool = v_stage.data();
    staged.num_pages = n_pages;
    staged.page_table = d_stage_table.data();
    const std::vector<float> q = test::random_bf16_values(static_cast<size_t>(batch) * 8 * d, rng);
    const auto d_q = to_device(test::to_bf16(q));
    const DecodeRun through_stage = run_dense(staged, d_q, 8, 0.1f);
    const DecodeRun fp8 = run_dense(cache.fp8(), d_q, 8, 0.1f);
    EXPECT_EQ(beyond_one_bf16_step(through_stage.out, fp8.out), 0) << "head_dim " << d;
    EXPECT_LE(lse_difference(through_stage.lse, fp8.lse), score_rounding_bound(q, cache, 8, 0.1f)) << "head_dim " << d;
  }
}

TEST(Fp8PagedKvValidation, NamesTheMissingField) {
  PagedKv kv;
  kv.dtype = KvDtype::Fp8E4m3;
  const int32_t dummy = 0;
  kv.k_pool = &dummy;
  kv.v_pool = &dummy;
  kv.page_table = &dummy;
  kv.kv_lens = &dummy;
  kv.num_pages = 1;
  kv.page_table_stride = 1;
  kv.batch = 1;
  kv.n_kv_heads = 1;
  kv.head_dim = 128;
  kv.max_kv_len = 64;
  try {
    validate_paged_kv("test", kv);
    FAIL() << "an FP8 cache without scales was accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("k_scales"), std::string::npos) << e.what();
  }
  kv.dtype = KvDtype::Bf16;
  kv.max_kv_len = 65;  // one page a row cannot hold 65 positions
  try {
    validate_paged_kv("test", kv);
    FAIL() << "a page table too short for max_kv_len was accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("page_table_stride"), std::string::npos) << e.what();
  }
  kv.max_kv_len = 64;
  EXPECT_NO_THROW(validate_paged_kv("test", kv));
  Fp8StageArgs stage;
  stage.source = kv;  // bf16: nothing to stage
  EXPECT_THROW(fp8_stage_pages(stage, nullptr), InputError);
}

}  // namespace
}  // namespace deltainfer::cuda
