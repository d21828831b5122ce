// DELTA selection, sparse decode, StreamingLLM and Quest on the GPU against the f64 CPU twins of
// reference_delta.h, on fresh random bf16 inputs (seed printed) in a paged cache with shuffled
// pages and NaN in every unused slot. Tolerances: attention outputs rel L2 < 1e-2 (bf16 output);
// DELTA page scores abs err < 1e-5 + 1e-3 |ref| (f32 exp of exact bf16 dot products); Quest page
// scores abs err < 1e-3 (1 + |ref|); selected sets equal the CPU top-k except where two CPU
// scores on either side of the cut differ by less than that tolerance (reported). Outputs and
// index sets are poisoned before each run and checked to be fully written.
#include <cuda_bf16.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "backend/cuda/delta_decode.h"
#include "backend/cuda/device_buffer.h"
#include "backend/cuda/page_topk.h"
#include "gpu/gpu_test_support.h"
#include "gpu/reference_delta.h"

namespace deltainfer::cuda {
namespace {

struct Inputs {
  test::PagedCacheHost cache;
  std::vector<int32_t> table;
  std::vector<int> lens;
  std::vector<float> q;
  int stride = 0, n_heads = 0, max_len = 0;
  DeviceBuffer<__nv_bfloat16> d_q, d_k, d_v;
  DeviceBuffer<int32_t> d_table, d_lens;
  const int32_t* pages(int s) const { return table.data() + static_cast<size_t>(s) * stride; }
  const float* q_of(int s) const { return q.data() + static_cast<size_t>(s) * n_heads * cache.head_dim; }
  // The device cache of every sequence, as the kernels take it.
  PagedKv paged_kv() const {
    PagedKv kv;
    kv.k_pool = d_k.data();
    kv.v_pool = d_v.data();
    kv.num_pages =
        static_cast<int>(cache.k.size() / (static_cast<size_t>(cache.n_kv_heads) * kKvPageSize * cache.head_dim));
    kv.page_table = d_table.data();
    kv.page_table_stride = stride;
    kv.kv_lens = d_lens.data();
    kv.batch = static_cast<int>(lens.size());
    kv.max_kv_len = max_len;
    kv.n_kv_heads = cache.n_kv_heads;
    kv.head_dim = cache.head_dim;
    return kv;
  }
};

Inputs make_inputs(const std::vector<int>& lens, int n_heads, int n_kv_heads, int d, std::mt19937_64& rng) {
  Inputs in;
  in.lens = lens;
  in.n_heads = n_heads;
  in.max_len = std::max(1, *std::max_element(lens.begin(), lens.end()));
  in.stride = (in.max_len + kKvPageSize - 1) / kKvPageSize;
  const int num_pages = in.stride * static_cast<int>(lens.size()) + 2;
  std::vector<int32_t> physical(static_cast<size_t>(num_pages));
  std::iota(physical.begin(), physical.end(), 0);
  std::shuffle(physical.begin(), physical.end(), rng);
  in.cache.n_kv_heads = n_kv_heads;
  in.cache.head_dim = d;
  const size_t pool = static_cast<size_t>(num_pages) * n_kv_heads * kKvPageSize * d;
  in.cache.k.assign(pool, NAN);
  in.cache.v.assign(pool, NAN);
  in.table.assign(lens.size() * in.stride, 0);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (size_t s = 0; s < lens.size(); ++s) {
    for (int pg = 0; pg < in.stride; ++pg) in.table[s * in.stride + pg] = physical[s * in.stride + pg];
    for (int t = 0; t < lens[s]; ++t) {
      for (int h = 0; h < n_kv_heads; ++h) {
        const size_t base = in.cache.index(in.table[s * in.stride + t / kKvPageSize], h, t % kKvPageSize);
        for (int i = 0; i < d; ++i) {
          in.cache.k[base + i] = test::round_bf16(normal(rng));
          in.cache.v[base + i] = test::round_bf16(normal(rng));
        }
      }
    }
  }
  // Larger queries make attention peaked, so the page scores spread out as in a real model.
  in.q = test::random_bf16_values(lens.size() * n_heads * d, rng, 2.0f);
  in.d_q = to_device(test::to_bf16(in.q));
  in.d_k = to_device(test::to_bf16(in.cache.k));
  in.d_v = to_device(test::to_bf16(in.cache.v));
  in.d_table = to_device(in.table);
  in.d_lens = to_device(std::vector<int32_t>(lens.begin(), lens.end()));
  return in;
}

float scale_of(const Inputs& in) { return 1.0f / std::sqrt(static_cast<float>(in.cache.head_dim)); }

struct DeviceSet {
  DeviceBuffer<int32_t> indices, counts;
  TokenSet view;
  DeviceSet(int batch, int sets, int capacity)
      : indices(static_cast<size_t>(batch) * sets * capacity), counts(static_cast<size_t>(batch) * sets) {
    indices.fill_bytes(0x7F);  // poison: 0x7F7F7F7F is no valid position
    counts.fill_bytes(0x7F);
    view = TokenSet{indices.data(), counts.data(), capacity, sets};
  }
  // The positions of set `row`, checked: count in range, ascending, -1 past the count.
  std::vector<int32_t> set_of(int row, const std::vector<int32_t>& all, const std::vector<int32_t>& c) const {
    const int count = c[static_cast<size_t>(row)];
    EXPECT_GE(count, 0);
    EXPECT_LE(count, view.capacity);
    const auto first = all.begin() + static_cast<std::ptrdiff_t>(row) * view.capacity;
    std::vector<int32_t> positions(first, first + std::clamp(count, 0, view.capacity));
    EXPECT_TRUE(std::is_sorted(positions.begin(), positions.end())) << "set " << row << " not in position order";
    for (int i = std::max(count, 0); i < view.capacity; ++i) EXPECT_EQ(first[i], -1) << "set " << row << " slot " << i;
    return positions;
  }
};

// Runs sparse decode over `set` and compares every head with the CPU over the same positions.
void expect_sparse_matches(const Inputs& in, const DeviceSet& set, const std::vector<std::vector<int32_t>>& sets,
                           const std::string& what) {
  const int batch = static_cast<int>(in.lens.size());
  const int d = in.cache.head_dim;
  const int group = in.n_heads / in.cache.n_kv_heads;
  const SparseDecodePlan plan = plan_sparse_decode(batch, in.n_heads, in.cache.n_kv_heads, d, set.view.capacity,
                                                   set.view.sets_per_seq, current_device_sm_count());
  DeviceBuffer<unsigned char> workspace(plan.workspace_bytes);
  DeviceBuffer<__nv_bfloat16> out(in.q.size());
  out.fill_bytes(0xFF);
  SparseDecodeArgs args;
  args.q = in.d_q.data();
  args.kv = in.paged_kv();
  args.set = set.view;
  args.n_heads = in.n_heads;
  args.softmax_scale = scale_of(in);
  args.out = out.data();
  args.workspace = workspace.data();
  args.workspace_bytes = workspace.bytes();
  std::vector<double> want(in.q.size(), 0.0);
  for (int s = 0; s < batch; ++s) {
    for (int h = 0; h < in.n_heads; ++h) {
      const int kv_head = h / group;
      const auto& positions = sets[static_cast<size_t>(s * set.view.sets_per_seq +
                                                       (set.view.sets_per_seq > 1 ? kv_head : 0))];
      if (positions.empty()) continue;  // empty set: output 0
      test::reference_attention_over(in.q_of(s) + static_cast<size_t>(h) * d, in.cache, in.pages(s), kv_head,
                                     positions, scale_of(in), want.data() + (static_cast<size_t>(s) * in.n_heads + h) * d);
    }
  }
  // Every merge of the splits: the planned one, the combine kernel, and the thread-block cluster
  // with 2 and 8 splits.
  struct Variant {
    SplitMerge merge;
    int splits;
    const char* name;
  };
  for (const Variant& v : {Variant{SplitMerge::kAuto, 0, "auto"}, Variant{SplitMerge::kCombineKernel, 0, "combine kernel"},
                           Variant{SplitMerge::kCluster, 2, "cluster of 2"}, Variant{SplitMerge::kCluster, 8, "cluster of 8"}}) {
    args.merge = v.merge;
    args.num_splits = v.splits;
    out.fill_bytes(0xFF);
    sparse_decode(args, nullptr);
    CUDA_CHECK(cudaDeviceSynchronize());
    const std::vector<float> got = test::to_float(out.download());
    const double err = test::relative_l2(got, want);
    std::cout << what << ": sparse decode " << v.name << " (planned splits " << plan.num_splits << "), rel L2 " << err
              << "\n";
    EXPECT_LT(err, 1e-2) << what << " (" << v.name << ")";
  }
}

// GPU pages must equal the CPU top-k; a difference is accepted only at the cut, between pages
// whose CPU scores are within `tol` of the k-th score.
void expect_same_pages(const std::vector<int>& gpu, const std::vector<double>& cpu_scores, int k, double tol,
                       const std::string& what) {
  const std::vector<int> want = test::reference_top_pages(cpu_scores, k);
  if (gpu == want) return;
  std::vector<double> sorted(cpu_scores);
  std::sort(sorted.begin(), sorted.end(), std::greater<double>());
  const double kth = sorted[static_cast<size_t>(std::min<int>(k, static_cast<int>(sorted.size())) - 1)];
  std::vector<int> diff;
  std::set_symmetric_difference(gpu.begin(), gpu.end(), want.begin(), want.end(), std::back_inserter(diff));
  EXPECT_EQ(gpu.size(), want.size()) << what;
  for (int p : diff) {
    EXPECT_LE(std::fabs(cpu_scores[static_cast<size_t>(p)] - kth), tol) << what << ": page " << p << " differs";
  }
  std::cout << what << ": " << diff.size() << " pages differ at the cut (within " << tol << ")\n";
}

std::vector<int> positions_to_pages(const std::vector<int32_t>& positions, int page) {
  std::vector<int> pages;
  for (int32_t t : positions) {
    if (pages.empty() || pages.back() != t / page) pages.push_back(t / page);
  }
  return pages;
}

struct DeltaCase {
  std::string name;
  std::vector<int> lens;
  int n_heads, n_kv_heads, d;
  PageSelectConfig config;
};
std::ostream& operator<<(std::ostream& os, const DeltaCase& c) { return os << c.name; }

PageSelectConfig config_of(int budget, int page, int recency, HeadReduce reduce = HeadReduce::kMax) {
  PageSelectConfig c;
  c.budget = budget;
  c.page = page;
  c.recency = recency;
  c.head_reduce = reduce;
  return c;
}

class DeltaSelectTest : public ::testing::TestWithParam<DeltaCase> {};

TEST_P(DeltaSelectTest, MatchesCpuTopkAndSparseDecodeMatches) {
  const DeltaCase& c = GetParam();
  std::mt19937_64 rng(test::fresh_seed("delta_select " + c.name));
  const Inputs in = make_inputs(c.lens, c.n_heads, c.n_kv_heads, c.d, rng);
  const int batch = static_cast<int>(c.lens.size());
  const DeltaSelectPlan plan =
      plan_delta_select(batch, c.n_heads, c.n_kv_heads, c.d, in.max_len, c.config, current_device_sm_count());
  DeviceBuffer<unsigned char> workspace(plan.workspace_bytes);
  workspace.fill_bytes(0xFF);
  DeviceBuffer<__nv_bfloat16> out(in.q.size());
  DeviceBuffer<float> lse(static_cast<size_t>(batch) * c.n_heads);
  DeviceSet set(batch, 1, token_set_capacity(c.config));
  DecodeAttentionArgs dense;
  dense.q = in.d_q.data();
  dense.kv = in.paged_kv();
  dense.n_heads = c.n_heads;
  dense.softmax_scale = scale_of(in);
  dense.out = out.data();
  dense.lse = lse.data();
  delta_decode_select(dense, c.config, workspace.data(), workspace.bytes(), set.view, nullptr);
  CUDA_CHECK(cudaDeviceSynchronize());
  const std::vector<int32_t> all = set.indices.download();
  const std::vector<int32_t> counts = set.counts.download();
  const std::vector<unsigned char> raw = workspace.download();
  const auto* page_scores = reinterpret_cast<const float*>(raw.data() + plan.page_scores_offset);

  const int k = c.config.budget / c.config.page;
  std::vector<std::vector<int32_t>> sets;
  for (int s = 0; s < batch; ++s) {
    const int len = c.lens[static_cast<size_t>(s)];
    const std::vector<double> want = test::reference_delta_page_scores(
        in.q_of(s), in.cache, in.pages(s), len, c.n_heads, scale_of(in), c.config.page, c.config.recency,
        c.config.keep_sink, c.config.head_reduce == HeadReduce::kSum);
    double worst = 0.0;
    for (size_t p = 0; p < want.size(); ++p) {
      const double got = page_scores[static_cast<size_t>(s) * plan.max_pages + p];
      if (std::isinf(want[p])) {
        EXPECT_TRUE(std::isinf(got) && got > 0) << "page " << p << " should be forced";
        continue;
      }
      worst = std::max(worst, std::fabs(got - want[p]) / (1e-5 + 1e-3 * std::fabs(want[p])));
    }
    EXPECT_LE(worst, 1.0) << c.name << " seq " << s << ": page score error over tolerance";
    const std::vector<int32_t> got = set.set_of(s, all, counts);
    const std::string what = c.name + " seq " + std::to_string(s);
    const int n_pages = static_cast<int>(want.size());
    if (len <= c.config.budget / c.config.page * c.config.page) {
      std::vector<int32_t> everything(static_cast<size_t>(len));
      std::iota(everything.begin(), everything.end(), 0);
      EXPECT_EQ(got, everything) << what << ": budget >= context must keep every token";
    } else {
      const int partial = len % c.config.page;
      const int expected = k * c.config.page - (partial != 0 ? c.config.page - partial : 0);
      EXPECT_EQ(static_cast<int>(got.size()), expected) << what << ": set size";
      EXPECT_EQ(got.front(), 0) << what << ": sink page";
      EXPECT_EQ(got.back(), len - 1) << what << ": newest token";
      const int recent_pages = (c.config.recency + c.config.page - 1) / c.config.page;
      for (int t = std::max(0, n_pages - recent_pages) * c.config.page; t < len; ++t) {
        EXPECT_TRUE(std::binary_search(got.begin(), got.end(), t)) << what << ": recent-page token " << t << " missing";
      }
      const std::vector<int> pages = positions_to_pages(got, c.config.page);
      EXPECT_EQ(test::pages_to_positions(pages, c.config.page, len), got) << what << ": whole pages";
      double kth_scale = 0.0;
      for (double w : want) kth_scale = std::isinf(w) ? kth_scale : std::max(kth_scale, w);
      expect_same_pages(pages, want, std::min(k, n_pages), 1e-5 + 1e-3 * kth_scale, what);
    }
    sets.push_back(got);
  }
  expect_sparse_matches(in, set, sets, c.name);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, DeltaSelectTest,
    ::testing::Values(DeltaCase{"llama_shape_40000", {40000}, 32, 8, 128, config_of(2048, 16, 128)},
                      DeltaCase{"batch3_partial_and_short", {20001, 100, 3000}, 32, 8, 128, config_of(1024, 16, 64)},
                      DeltaCase{"token_level_page1", {5000}, 28, 4, 128, config_of(512, 1, 32)},
                      DeltaCase{"sum_over_heads_d64", {9000}, 9, 3, 64, config_of(1024, 16, 128, HeadReduce::kSum)},
                      DeltaCase{"budget_covers_context", {1500, 2048}, 32, 8, 128, config_of(2048, 16, 128)},
                      DeltaCase{"with_empty_sequence", {0, 4000}, 16, 1, 128, config_of(256, 16, 128)}),
    [](const ::testing::TestParamInfo<DeltaCase>& info) { return info.param.name; });

TEST(SparseDecodeTest, RandomPerKvHeadSetsMatchCpu) {
  std::mt19937_64 rng(test::fresh_seed("sparse_decode per-head sets"));
  const Inputs in = make_inputs({30000, 700, 5}, 32, 8, 128, rng);
  const int capacity = 1000;
  DeviceSet set(3, 8, capacity);
  std::vector<int32_t> indices(static_cast<size_t>(3) * 8 * capacity, -1), counts(24);
  std::vector<std::vector<int32_t>> sets;
  for (int s = 0; s < 3; ++s) {
    for (int h = 0; h < 8; ++h) {
      std::vector<int32_t> all(static_cast<size_t>(in.lens[static_cast<size_t>(s)]));
      std::iota(all.begin(), all.end(), 0);
      std::shuffle(all.begin(), all.end(), rng);
      const int count = h == 3 ? 0 : std::min<int>(static_cast<int>(all.size()), 1 + static_cast<int>(rng() % capacity));
      std::vector<int32_t> chosen(all.begin(), all.begin() + count);
      std::sort(chosen.begin(), chosen.end());
      std::copy(chosen.begin(), chosen.end(), indices.begin() + (s * 8 + h) * capacity);
      counts[static_cast<size_t>(s * 8 + h)] = count;
      sets.push_back(chosen);
    }
  }
  set.indices.upload(indices);
  set.counts.upload(counts);
  expect_sparse_matches(in, set, sets, "per-kv-head random sets");
}

TEST(StreamingTest, SinkAndWindowSetAndDecode) {
  std::mt19937_64 rng(test::fresh_seed("streaming"));
  const Inputs in = make_inputs({10000, 50, 0, 1064}, 32, 8, 128, rng);
  const int sink = 64, window = 1000;
  DeviceSet set(4, 1, sink + window + 7);
  streaming_select(in.d_lens.data(), 4, sink, window, set.view, nullptr);
  CUDA_CHECK(cudaDeviceSynchronize());
  const std::vector<int32_t> all = set.indices.download(), counts = set.counts.download();
  std::vector<std::vector<int32_t>> sets;
  for (int s = 0; s < 4; ++s) {
    const int len = in.lens[static_cast<size_t>(s)];
    std::vector<int32_t> want;
    for (int t = 0; t < len; ++t) {
      if (t < sink || t >= len - window) want.push_back(t);
    }
    EXPECT_EQ(set.set_of(s, all, counts), want) << "seq " << s;
    sets.push_back(want);
  }
  expect_sparse_matches(in, set, sets, "streaming");
}

TEST(QuestTest, BoundsSelectionAndDecodeMatchCpu) {
  std::mt19937_64 rng(test::fresh_seed("quest"));
  const std::vector<int> lens = {20000, 333};
  Inputs in = make_inputs(lens, 32, 8, 128, rng);
  const int batch = 2, n_kv = 8, d = 128;
  const int num_pool_pages = static_cast<int>(in.cache.k.size() / (static_cast<size_t>(n_kv) * kKvPageSize * d));
  DeviceBuffer<__nv_bfloat16> bounds(quest_bounds_elements(num_pool_pages, n_kv, d));
  bounds.fill_bytes(0xFF);
  const QuestCache cache{in.paged_kv(), bounds.data()};
  // Build the bounds 37 tokens short, then append the rest one token at a time.
  std::vector<int32_t> partial = {lens[0] - 37, lens[1] - 37};
  in.d_lens.upload(partial);
  quest_build_bounds(cache, nullptr);
  for (int step = 0; step < 37; ++step) {
    for (auto& len : partial) ++len;
    in.d_lens.upload(partial);
    quest_append_bounds(cache, nullptr);
  }
  CUDA_CHECK(cudaDeviceSynchronize());
  const std::vector<float> got_bounds = test::to_float(bounds.download());
  std::vector<float> lo, hi;
  for (int s = 0; s < batch; ++s) {
    for (int h = 0; h < n_kv; ++h) {
      for (int qp = 0; qp < (lens[static_cast<size_t>(s)] + 15) / 16; ++qp) {
        test::reference_quest_bounds(in.cache, in.pages(s), h, qp, lens[static_cast<size_t>(s)], lo, hi);
        const int pool = in.pages(s)[qp / 4];
        const size_t base = ((static_cast<size_t>(pool) * n_kv + h) * 4 + qp % 4) * 2 * d;
        for (int i = 0; i < d; ++i) {
          ASSERT_EQ(got_bounds[base + i], lo[static_cast<size_t>(i)]) << "seq " << s << " head " << h << " page " << qp;
          ASSERT_EQ(got_bounds[base + d + i], hi[static_cast<size_t>(i)]) << "seq " << s << " head " << h << " page " << qp;
        }
      }
    }
  }

  PageSelectConfig config = config_of(1024, 16, 64);
  const QuestSelectPlan plan = plan_quest_select(batch, 32, n_kv, d, in.max_len, config);
  DeviceBuffer<unsigned char> workspace(plan.workspace_bytes);
  workspace.fill_bytes(0xFF);
  DeviceSet set(batch, n_kv, token_set_capacity(config));
  quest_select(in.d_q.data(), 32, cache, config, workspace.data(), workspace.bytes(), set.view, nullptr);
  CUDA_CHECK(cudaDeviceSynchronize());
  const std::vector<float> scores = workspace.download().size() ? [&] {
    const std::vector<unsigned char> raw = workspace.download();
    std::vector<float> f(raw.size() / sizeof(float));
    std::copy_n(reinterpret_cast<const float*>(raw.data()), f.size(), f.begin());
    return f;
  }() : std::vector<float>{};
  const std::vector<int32_t> all = set.indices.download(), counts = set.counts.download();
  std::vector<std::vector<int32_t>> sets;
  const int group = 4;
  for (int s = 0; s < batch; ++s) {
    const int len = lens[static_cast<size_t>(s)];
    const int n_pages = (len + 15) / 16;
    for (int h = 0; h < n_kv; ++h) {
      const int row = s * n_kv + h;
      std::vector<double> want(static_cast<size_t>(n_pages));
      double worst = 0.0;
      const int first_recent = std::max(0, n_pages - (config.recency + 15) / 16);
      for (int qp = 0; qp < n_pages; ++qp) {
        test::reference_quest_bounds(in.cache, in.pages(s), h, qp, len, lo, hi);
        const float* q_group = in.q_of(s) + static_cast<size_t>(h) * group * d;
        const double bound = test::reference_quest_score(q_group, group, d, lo, hi);
        double true_max = -INFINITY;
        for (int t = qp * 16; t < std::min(len, qp * 16 + 16); ++t) {
          for (int g = 0; g < group; ++g) {
            true_max = std::max(true_max, test::dot(q_group + static_cast<size_t>(g) * d,
                                                    test::key_row(in.cache, in.pages(s), h, t), d));
          }
        }
        EXPECT_GE(bound, true_max - 1e-9) << "Quest bound below the true max";
        const bool forced = qp == 0 || qp >= first_recent;
        want[static_cast<size_t>(qp)] = forced ? INFINITY : bound;
        const double got = scores[static_cast<size_t>(row) * plan.max_pages + qp];
        if (forced) {
          EXPECT_TRUE(std::isinf(got) && got > 0);
        } else {
          EXPECT_GE(got, true_max - 1e-3 * (1.0 + std::fabs(true_max))) << "GPU Quest bound below the true max";
          worst = std::max(worst, std::fabs(got - bound) / (1e-3 * (1.0 + std::fabs(bound))));
        }
      }
      EXPECT_LE(worst, 1.0) << "Quest page score error, seq " << s << " head " << h;
      const std::vector<int32_t> got = set.set_of(row, all, counts);
      const std::string what = "quest seq " + std::to_string(s) + " head " + std::to_string(h);
      if (len <= token_set_capacity(config)) {
        EXPECT_EQ(static_cast<int>(got.size()), len) << what;
      } else {
        expect_same_pages(positions_to_pages(got, 16), want, config.budget / 16, 2e-3 * 100.0, what);
        EXPECT_EQ(static_cast<int>(got.size()), config.budget - (len % 16 != 0 ? 16 - len % 16 : 0)) << what;
      }
      sets.push_back(got);
    }
  }
  expect_sparse_matches(in, set, sets, "quest");
}

TEST(PageTopkTest, MillionTokensAndTiesMatchCpu) {
  std::mt19937_64 rng(test::fresh_seed("page_topk"));
  const int n = 1 << 20, k = 2048;
  std::vector<float> scores(static_cast<size_t>(2) * n);
  std::uniform_real_distribution<float> uniform(-3.0f, 3.0f);
  for (int i = 0; i < n; ++i) scores[static_cast<size_t>(i)] = uniform(rng);  // row 0: distinct (almost surely)
  for (int i = 0; i < n; ++i) scores[static_cast<size_t>(n + i)] = static_cast<float>(rng() % 8);  // row 1: ties
  auto d_scores = to_device(scores);
  auto d_lens = to_device(std::vector<int32_t>{n, n - 5});
  DeviceSet set(2, 1, k);
  PageTopkArgs args;
  args.scores = d_scores.data();
  args.score_stride = n;
  args.rows = 2;
  args.kv_lens = d_lens.data();
  args.page = 1;
  args.k_pages = k;
  args.set = set.view;
  page_topk(args, nullptr);
  CUDA_CHECK(cudaDeviceSynchronize());
  const std::vector<int32_t> all = set.indices.download(), counts = set.counts.download();
  for (int row = 0; row < 2; ++row) {
    const int len = row == 0 ? n : n - 5;
    std::vector<double> want(scores.begin() + static_cast<std::ptrdiff_t>(row) * n,
                             scores.begin() + static_cast<std::ptrdiff_t>(row) * n + len);
    const std::vector<int> expected = test::reference_top_pages(want, k);
    const std::vector<int32_t> got = set.set_of(row, all, counts);
    EXPECT_EQ(std::vector<int>(got.begin(), got.end()), expected) << "row " << row;
  }
}

}  // namespace
}  // namespace deltainfer::cuda
