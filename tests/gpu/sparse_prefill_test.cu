// Sparse prefill kernels (sliding window + sink, block-sparse lists, and both with the fused
// delta correction) against an f64 CPU reference on fresh random bf16 inputs over a shuffled
// paged KV cache whose slots past kv_len hold NaN. Outputs and LSE are poisoned first and must
// be fully written.
// Tolerances: bf16 outputs, so rel L2 < 1e-2 and max abs < 4e-2 (6e-2 with the fused delta,
// whose rows carry the rounding of two attention outputs); f32 LSE abs error < 5e-3.
// Every case runs on the v3 kernel (kSm90, the fallback) and on the FA3-style one (kSm90Ws, the
// default, suffix _sm90ws; the fused cases' dense rows then come from its dense mode too). Runs
// wait through the stream watchdog, so a kernel stuck in a barrier fails its case instead of
// blocking the suite.
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <iostream>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "backend/cuda/delta_correct.h"
#include "backend/cuda/sparse_prefill.h"
#include "core/error.h"
#include "gpu_test_support.h"
#include "reference_sparse_prefill.h"
#include "stream_watchdog.h"

namespace deltainfer::cuda {
namespace {

using test::DeviceVec;
using test::PagedProblem;
using test::ProblemShape;

bool has_wgmma() {
  int device = 0, major = 0;
  return cudaGetDevice(&device) == cudaSuccess &&
         cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) == cudaSuccess &&
         major == 9;
}

enum class Kind { kSliding, kBlocks };

struct Case {
  std::string name;
  ProblemShape shape;
  Kind kind;
  int window;  // sliding
  int sink;
  int gamma;  // > 0: fused delta correction
  bool compact = false;  // sliding: compacted queries (q_pos), random increasing positions
  PrefillKernel kernel = PrefillKernel::kSm90;
};

// n strictly increasing positions in [0, kv_len), the last one kv_len - 1 (a chunk's queries
// compacted as a strided or tail pass passes them).
std::vector<int32_t> random_positions(int n, int kv_len, std::mt19937_64& rng) {
  std::vector<int32_t> all(static_cast<size_t>(kv_len - 1));
  std::iota(all.begin(), all.end(), 0);
  std::shuffle(all.begin(), all.end(), rng);
  std::vector<int32_t> pos(all.begin(), all.begin() + (n - 1));
  pos.push_back(kv_len - 1);
  std::sort(pos.begin(), pos.end());
  return pos;
}

// Random lists: every block that meets the query block's position range (the diagonal), and
// each earlier block with probability 0.3 (block 0 always: a "vertical" column).
struct Lists {
  std::vector<int32_t> offsets, indices;
  std::vector<std::set<int>> sets;
};

Lists random_lists(const ProblemShape& s, std::mt19937_64& rng) {
  Lists l;
  const int n_qblocks = (s.n_q + kSparseQueryBlock - 1) / kSparseQueryBlock;
  std::bernoulli_distribution pick(0.3);
  l.offsets.push_back(0);
  for (int h = 0; h < s.n_heads; ++h) {
    for (int qb = 0; qb < n_qblocks; ++qb) {
      const int first = s.first_pos + qb * kSparseQueryBlock;
      const int last = s.first_pos + std::min(s.n_q, (qb + 1) * kSparseQueryBlock) - 1;
      std::set<int> set;
      for (int b = 0; b <= last / kSparseKeyBlock; ++b) {
        if (b == 0 || b >= first / kSparseKeyBlock || pick(rng)) set.insert(b);
      }
      l.indices.insert(l.indices.end(), set.begin(), set.end());
      l.offsets.push_back(static_cast<int32_t>(l.indices.size()));
      l.sets.push_back(std::move(set));
    }
  }
  return l;
}

class SparsePrefillTest : public ::testing::TestWithParam<Case> {};

TEST_P(SparsePrefillTest, MatchesF64Reference) {
  if (!has_wgmma()) GTEST_SKIP() << "sparse prefill needs a Hopper GPU";
  const Case& c = GetParam();
  std::mt19937_64 rng(test::fresh_seed(c.name));
  const ProblemShape& s = c.shape;
  PagedProblem prob(s, rng);
  const size_t out_elems = static_cast<size_t>(s.n_q) * prob.row_elems();
  DeviceVec<__nv_bfloat16> out(out_elems);
  DeviceVec<float> lse(static_cast<size_t>(s.n_q) * s.n_heads);
  ASSERT_TRUE(prob.d_q.ptr && prob.d_k.ptr && prob.d_v.ptr && out.ptr && lse.ptr);
  out.poison();
  lse.poison();

  // Dense rows of the fused correction, from the dense kernel with strided positions.
  const int n_strided = c.gamma > 0 ? strided_row_count(s.n_q, c.gamma) : 0;
  DeviceVec<__nv_bfloat16> q_strided(static_cast<size_t>(n_strided) * prob.row_elems());
  DeviceVec<__nv_bfloat16> dense_rows(static_cast<size_t>(n_strided) * prob.row_elems());
  DeviceVec<int32_t> positions(static_cast<size_t>(n_strided));
  DeltaFusion fused;
  if (c.gamma > 0) {
    const int row_elems = static_cast<int>(prob.row_elems());
    gather_strided_rows(prob.d_q.ptr, s.n_q, row_elems, c.gamma, q_strided.ptr, nullptr);
    strided_positions(s.n_q, s.first_pos, c.gamma, positions.ptr, nullptr);
    PrefillAttentionArgs dense = prob.args(dense_rows.ptr, nullptr);
    dense.q = q_strided.ptr;
    dense.q_pos = positions.ptr;
    dense.n_q = n_strided;
    prefill_attention(dense, nullptr, c.kernel);
    fused = DeltaFusion{dense_rows.ptr, c.gamma};
  }

  Lists lists;
  DeviceVec<int32_t> d_offsets, d_indices;
  PrefillAttentionArgs args = prob.args(out.ptr, lse.ptr);
  DeviceVec<int32_t> d_positions;
  if (c.compact) {
    prob.positions = random_positions(s.n_q, s.kv_len, rng);
    d_positions.assign(prob.positions);
    args.q_pos = d_positions.ptr;
  }
  if (c.kind == Kind::kSliding) {
    sliding_prefill_attention(args, c.window, c.sink, nullptr, fused, c.kernel);
  } else {
    lists = random_lists(s, rng);
    d_offsets.assign(lists.offsets);
    d_indices.assign(lists.indices);
    block_sparse_prefill_attention(args, {d_offsets.ptr, d_indices.ptr}, nullptr, fused, c.kernel);
  }
  ASSERT_EQ(cudaGetLastError(), cudaSuccess);
  ASSERT_EQ(test::sync_or_exit(nullptr, c.name), cudaSuccess);
  const std::vector<__nv_bfloat16> got = out.download();
  const std::vector<float> got_lse = lse.download();
  size_t unwritten = 0;
  for (const auto& x : got) unwritten += std::isfinite(__bfloat162float(x)) ? 0 : 1;
  for (const float x : got_lse) unwritten += std::isfinite(x) ? 0 : 1;
  ASSERT_EQ(unwritten, 0u) << "elements left poisoned or non-finite";

  const int n_qblocks = (s.n_q + kSparseQueryBlock - 1) / kSparseQueryBlock;
  const auto keep_for = [&](int row, int head) -> std::function<bool(int, int)> {
    if (c.kind == Kind::kSliding) {
      return [&c](int pos, int j) { return j < c.sink || j > pos - c.window; };
    }
    const std::set<int>& set =
        lists.sets[static_cast<size_t>(head * n_qblocks + row / kSparseQueryBlock)];
    return [&set](int, int j) { return set.count(j / kSparseKeyBlock) > 0; };
  };
  const auto all = [](int, int) { return true; };
  const int d = s.head_dim;
  std::vector<double> ref(static_cast<size_t>(d)), ref_r(static_cast<size_t>(d)),
      dense_r(static_cast<size_t>(d));
  double err2 = 0.0, ref2 = 0.0, max_abs = 0.0, max_lse = 0.0;
  for (const int i : test::checked_rows(s.n_q)) {
    for (int h = 0; h < s.n_heads; ++h) {
      const double ref_lse = prob.reference(i, h, keep_for(i, h), ref.data());
      if (c.gamma > 0) {
        const int r = i - (s.first_pos + i) % c.gamma;  // row of the strided position
        prob.reference(r, h, keep_for(r, h), ref_r.data());
        prob.reference(r, h, all, dense_r.data());
        for (int e = 0; e < d; ++e) {
          const size_t ue = static_cast<size_t>(e);
          ref[ue] += dense_r[ue] - ref_r[ue];
        }
      }
      const size_t o = (static_cast<size_t>(i) * s.n_heads + static_cast<size_t>(h)) * d;
      for (int e = 0; e < d; ++e) {
        const double diff = __bfloat162float(got[o + static_cast<size_t>(e)]) - ref[static_cast<size_t>(e)];
        err2 += diff * diff;
        ref2 += ref[static_cast<size_t>(e)] * ref[static_cast<size_t>(e)];
        max_abs = std::max(max_abs, std::abs(diff));
      }
      max_lse = std::max(max_lse,
                         std::abs(got_lse[static_cast<size_t>(i) * s.n_heads + static_cast<size_t>(h)] - ref_lse));
    }
  }
  const double rel = std::sqrt(err2 / ref2);
  std::cout << c.name << ": rel L2 " << rel << ", max abs " << max_abs << ", max lse err "
            << max_lse << "\n";
  EXPECT_LT(rel, 1e-2);
  EXPECT_LT(max_abs, c.gamma > 0 ? 6e-2 : 4e-2);
  EXPECT_LT(max_lse, 5e-3);
}

std::vector<Case> cases() {
  // name, {n_q, kv_len, first_pos, heads, kv heads, d}, kind, window, sink, gamma[, compact]
  const std::vector<Case> shapes = {
      {"slide_n1000_w128_s64_d128_g4", {1000, 1000, 0, 8, 2, 128}, Kind::kSliding, 128, 64, 0},
      {"slide_n4097_w300_s0_d64_g3", {4097, 4097, 0, 3, 1, 64}, Kind::kSliding, 300, 0, 0},
      {"slide_n3000_w2048_s64_d128_g4", {3000, 3000, 0, 4, 1, 128}, Kind::kSliding, 2048, 64, 0},
      {"slide_n777_w1_s0_d64", {777, 777, 0, 2, 2, 64}, Kind::kSliding, 1, 0, 0},
      {"slide_n777_w1_s5_d128", {777, 777, 0, 2, 1, 128}, Kind::kSliding, 1, 5, 0},
      {"slide_n65_w17_s3_d128_g3", {65, 65, 0, 6, 2, 128}, Kind::kSliding, 17, 3, 0},
      {"slide_n1_w4_s2_d128", {1, 1, 0, 2, 2, 128}, Kind::kSliding, 4, 2, 0},
      {"slide_window_ge_n_is_dense_n500", {500, 500, 0, 4, 2, 128}, Kind::kSliding, 100000, 0, 0},
      {"slide_sink_ge_n_n300_w7", {300, 300, 0, 4, 2, 64}, Kind::kSliding, 7, 1000, 0},
      {"slide_s100_w333_n2000_d128_g4", {2000, 2000, 0, 8, 2, 128}, Kind::kSliding, 333, 100, 0},
      {"slide_chunk_first700_n300_kv1000", {300, 1000, 700, 8, 2, 128}, Kind::kSliding, 256, 64, 0},
      {"slide_chunk_first130_n65_kv195_d64", {65, 195, 130, 6, 2, 64}, Kind::kSliding, 100, 10, 0},
      {"blocks_n1000_d128_g4", {1000, 1000, 0, 8, 2, 128}, Kind::kBlocks, 0, 0, 0},
      {"blocks_n4097_d64_g3", {4097, 4097, 0, 3, 1, 64}, Kind::kBlocks, 0, 0, 0},
      {"blocks_n200_d128_g1", {200, 200, 0, 2, 2, 128}, Kind::kBlocks, 0, 0, 0},
      {"blocks_chunk_first640_n300_kv940", {300, 940, 640, 4, 2, 128}, Kind::kBlocks, 0, 0, 0},
      {"slide_delta64_n3000_w512_s64_d128_g4", {3000, 3000, 0, 4, 1, 128}, Kind::kSliding, 512, 64, 64},
      {"slide_delta32_n1000_w200_s16_d64_g3", {1000, 1000, 0, 3, 1, 64}, Kind::kSliding, 200, 16, 32},
      {"slide_delta16_n333_w50_s0_d128", {333, 333, 0, 2, 1, 128}, Kind::kSliding, 50, 0, 16},
      {"slide_delta64_chunk_first1024_n700", {700, 1724, 1024, 4, 2, 128}, Kind::kSliding, 300, 64, 64},
      {"blocks_delta64_n2000_d128_g4", {2000, 2000, 0, 8, 2, 128}, Kind::kBlocks, 0, 0, 64},
      // Compacted queries: windows spanning several tiles, a first block whose rows are far
      // apart (the tile range runs from the first row's window to the last row's diagonal),
      // and a short last block (<= 64 rows: the second consumer warpgroup has none).
      {"slide_compact_n300_kv2000_w256_s64_d128_g4", {300, 2000, 0, 8, 2, 128}, Kind::kSliding, 256, 64, 0, true},
      {"slide_compact_n150_kv5000_w100_s0_d64_g3", {150, 5000, 0, 3, 1, 64}, Kind::kSliding, 100, 0, 0, true},
      {"slide_compact_n40_kv700_w1_s5_d128", {40, 700, 0, 2, 2, 128}, Kind::kSliding, 1, 5, 0, true},
  };
  return test::with_sm90ws_copies(shapes);
}

INSTANTIATE_TEST_SUITE_P(Shapes, SparsePrefillTest, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<Case>& param) { return param.param.name; });

TEST(SparsePrefillArgsTest, RejectsBadParameters) {
  PrefillAttentionArgs args;
  args.kv.head_dim = 128;
  args.n_heads = 4;
  args.kv.n_kv_heads = 2;
  EXPECT_THROW(sliding_prefill_attention(args, 0, 0, nullptr), InputError);
  EXPECT_THROW(block_sparse_prefill_attention(args, {}, nullptr), InputError);
  EXPECT_THROW(sliding_prefill_attention(args, 0, 0, nullptr, {}, PrefillKernel::kSm90Ws), InputError);
  EXPECT_THROW(block_sparse_prefill_attention(args, {}, nullptr, {}, PrefillKernel::kSm90Ws),
               InputError);
  // The sm80 kernel has no sparse modes: refused before anything is read.
  EXPECT_THROW(sliding_prefill_attention(args, 4, 0, nullptr, {}, PrefillKernel::kSm80), InputError);
}

}  // namespace
}  // namespace deltainfer::cuda
