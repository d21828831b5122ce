// Vertical-slash estimation on the GPU (vslash_estimate.h) against its CPU twin
// (attention/vertical_slash.h) on fresh random bf16 inputs over a shuffled paged KV cache whose
// slots past kv_len hold NaN; chunks start at 0 or mid-cache, at positions that are not multiples
// of 64 or 128, and end inside a page.
// - Scores: the CPU twin sums f64 probabilities of the same bf16 values; the GPU sums f32 ones
//   from the dense kernel's f32 LSE. Tolerance |gpu - cpu| <= 5e-3 cpu + 1e-6 (the LSE shifts a
//   whole row; the prefill tests bound its error by 5e-3, observed ~1e-5).
// - Selection: the kept columns and offsets equal the CPU's top-k except near-ties: an index may
//   be in one set only if its CPU score lies within that same tolerance of the CPU's k-th score.
// - Lists: exactly the CPU's vertical_slash_ranges for the GPU's kept columns and offsets, per
//   (head, 128-row query block counted from the chunk's first row), and deterministic.
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <iostream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "attention/top_k.h"
#include "attention/vertical_slash.h"
#include "backend/cuda/vslash_estimate.h"
#include "core/error.h"
#include "gpu_test_support.h"
#include "reference_sparse_prefill.h"

namespace deltainfer::cuda {
namespace {

using test::PagedProblem;
using test::ProblemShape;

constexpr double kScoreRelative = 5e-3;
constexpr double kScoreAbsolute = 1e-6;

double score_tolerance(double score) { return kScoreRelative * std::fabs(score) + kScoreAbsolute; }

struct Case {
  std::string name;
  ProblemShape shape;
  VslashParams params;
};

template <typename T>
std::vector<T> download(const T* device, size_t count) {
  std::vector<T> host(count);
  EXPECT_EQ(cudaMemcpy(host.data(), device, count * sizeof(T), cudaMemcpyDeviceToHost), cudaSuccess);
  return host;
}

// The problem's keys as the CPU KV pool lays them out: f32 [pages][n_kv_heads][kKvPageTokens][head_dim],
// pages in order.
struct CpuKv {
  std::vector<float> k, v;
  std::vector<int32_t> pages;
  attention::KvView view;
  explicit CpuKv(const PagedProblem& p) {
    const ProblemShape& s = p.shape;
    const size_t d = static_cast<size_t>(s.head_dim);
    pages.resize(static_cast<size_t>(pages_for_positions(s.kv_len)));
    for (size_t i = 0; i < pages.size(); ++i) pages[i] = static_cast<int32_t>(i);
    k.resize(pages.size() * static_cast<size_t>(s.n_kv_heads * kKvPageTokens) * d);
    v.resize(k.size());
    view = {k.data(), v.data(), pages.data(), s.n_kv_heads, s.head_dim, s.kv_len};
    for (int h = 0; h < s.n_kv_heads; ++h) {
      for (int j = 0; j < s.kv_len; ++j) {
        const size_t dst = static_cast<size_t>(view.offset(h, j));
        std::copy_n(&p.k[p.key_offset(j, h)], d, &k[dst]);
        std::copy_n(&p.v[p.key_offset(j, h)], d, &v[dst]);
      }
    }
  }
};

// One head's kept indices (columns or offsets) from a TokenSet of the GPU.
std::vector<int64_t> kept_of(const std::vector<int32_t>& indices, const std::vector<int32_t>& counts, int capacity,
                             int head) {
  const auto first = indices.begin() + static_cast<std::ptrdiff_t>(head) * capacity;
  return std::vector<int64_t>(first, first + counts[static_cast<size_t>(head)]);
}

// GPU scores against the CPU's within tolerance; GPU selection against the CPU's top-k up to
// near-ties. Returns how many near-tie swaps were seen.
int expect_selection_matches(const std::vector<double>& cpu, const float* gpu, const std::vector<int64_t>& kept,
                             int64_t k, const char* what, int head) {
  for (size_t j = 0; j < cpu.size(); ++j) {
    if (!(std::fabs(gpu[j] - cpu[j]) <= score_tolerance(cpu[j]))) {  // NaN fails too
      ADD_FAILURE() << what << " head " << head << ": score of " << j << " is " << gpu[j] << " on the GPU, "
                    << cpu[j] << " on the CPU";
      break;
    }
  }
  const std::vector<int64_t> want = attention::top_k_indices(cpu, k);
  EXPECT_EQ(kept.size(), want.size()) << what << " head " << head;
  EXPECT_TRUE(std::is_sorted(kept.begin(), kept.end())) << what << " head " << head;
  if (want.empty()) return 0;
  double kth = INFINITY;
  for (int64_t j : want) kth = std::min(kth, cpu[static_cast<size_t>(j)]);
  std::vector<int64_t> differ;
  std::set_symmetric_difference(kept.begin(), kept.end(), want.begin(), want.end(), std::back_inserter(differ));
  for (int64_t j : differ) {
    EXPECT_LE(std::fabs(cpu[static_cast<size_t>(j)] - kth), score_tolerance(kth))
        << what << " head " << head << ": index " << j << " (CPU score " << cpu[static_cast<size_t>(j)]
        << ", k-th " << kth << ") is in only one of the GPU and CPU selections";
  }
  return static_cast<int>(differ.size());
}

class VslashEstimateTest : public ::testing::TestWithParam<Case> {};

TEST_P(VslashEstimateTest, MatchesCpuTwin) {
  const Case& c = GetParam();
  const ProblemShape& s = c.shape;
  std::mt19937_64 rng(test::fresh_seed("VslashEstimate." + c.name));
  const PagedProblem problem(s, rng);
  const int64_t capacity = s.kv_len + 100;
  VslashEstimator estimator(s.n_heads, s.head_dim, s.n_q + 37, capacity, c.params);
  const PrefillAttentionArgs chunk = problem.args(nullptr, nullptr);
  const BlockSparseLists lists = estimator.build_lists(chunk, nullptr);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);

  const int n_qblocks = (s.n_q + kSparseQueryBlock - 1) / kSparseQueryBlock;
  const size_t n_lists = static_cast<size_t>(s.n_heads) * n_qblocks;
  const std::vector<int32_t> offsets = download(lists.offsets, n_lists + 1);
  const std::vector<int32_t> indices = download(lists.indices, static_cast<size_t>(offsets.back()));
  const size_t stride = static_cast<size_t>(estimator.score_stride());
  const std::vector<float> vertical = download(estimator.vertical_scores(), s.n_heads * stride);
  const std::vector<float> slash = download(estimator.slash_scores(), s.n_heads * stride);
  const TokenSet columns_set = estimator.kept_columns(), offsets_set = estimator.kept_offsets();
  const std::vector<int32_t> columns = download(columns_set.indices, s.n_heads * static_cast<size_t>(columns_set.capacity));
  const std::vector<int32_t> column_counts = download(columns_set.counts, static_cast<size_t>(s.n_heads));
  const std::vector<int32_t> kept_offsets = download(offsets_set.indices, s.n_heads * static_cast<size_t>(offsets_set.capacity));
  const std::vector<int32_t> offset_counts = download(offsets_set.counts, static_cast<size_t>(s.n_heads));

  // Same inputs again: the same lists, bit for bit.
  const BlockSparseLists again = estimator.build_lists(chunk, nullptr);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  EXPECT_EQ(download(again.offsets, n_lists + 1), offsets);
  EXPECT_EQ(download(again.indices, static_cast<size_t>(offsets.back())), indices);

  const CpuKv kv(problem);
  const attention::HeadShape shape{s.n_heads, s.n_kv_heads, s.head_dim};
  const int64_t end = s.first_pos + s.n_q, rows = std::min<int64_t>(c.params.estimate_queries, s.n_q);
  const attention::VerticalSlashParams cpu_params{c.params.estimate_queries, kSparseKeyBlock, c.params.vertical,
                                                  c.params.slash};
  attention::KernelScratch scratch;
  int near_ties = 0;
  for (int head = 0; head < s.n_heads; ++head) {
    const float* q = problem.q.data() + ((s.n_q - rows) * s.n_heads + head) * int64_t{s.head_dim};
    const attention::VerticalSlashScores cpu =
        attention::vertical_slash_scores(shape, kv.view, head, {q, shape.q_row_stride(), end - rows, rows}, scratch);
    const std::vector<int64_t> gpu_columns = kept_of(columns, column_counts, columns_set.capacity, head);
    const std::vector<int64_t> gpu_offsets = kept_of(kept_offsets, offset_counts, offsets_set.capacity, head);
    const int head_ties = expect_selection_matches(cpu.vertical, vertical.data() + head * stride, gpu_columns,
                                                   c.params.vertical, "vertical", head) +
                          expect_selection_matches(cpu.slash, slash.data() + head * stride, gpu_offsets,
                                                   c.params.slash, "slash", head);
    near_ties += head_ties;

    // The CPU twin's pattern from the GPU's selection (equal to its own without near-ties).
    attention::VerticalSlashPattern pattern;
    for (int64_t column : gpu_columns) {
      const int64_t block = column / kSparseKeyBlock;
      if (pattern.column_blocks.empty() || pattern.column_blocks.back() != block) pattern.column_blocks.push_back(block);
    }
    pattern.offsets = gpu_offsets;
    if (head_ties == 0) {
      const attention::VerticalSlashPattern own = attention::select_vertical_slash(cpu, cpu_params);
      EXPECT_EQ(own.column_blocks, pattern.column_blocks) << "head " << head;
      EXPECT_EQ(own.offsets, pattern.offsets) << "head " << head;
    }
    for (int qb = 0; qb < n_qblocks; ++qb) {
      const int64_t i0 = s.first_pos + int64_t{qb} * kSparseQueryBlock;
      const int64_t i1 = std::min(end, i0 + kSparseQueryBlock);
      const size_t list = static_cast<size_t>(head) * n_qblocks + qb;
      const std::vector<int64_t> blocks(indices.begin() + offsets[list], indices.begin() + offsets[list + 1]);
      ASSERT_TRUE(std::is_sorted(blocks.begin(), blocks.end()) &&
                  std::adjacent_find(blocks.begin(), blocks.end()) == blocks.end())
          << "head " << head << " query block " << qb;
      ASSERT_TRUE(blocks.empty() || blocks.back() <= (i1 - 1) / kSparseKeyBlock);
      const std::vector<attention::KeyRange> want = attention::vertical_slash_ranges(pattern, kSparseKeyBlock, i0, i1);
      const std::vector<attention::KeyRange> got = attention::ranges_from_blocks(blocks, kSparseKeyBlock, i1);
      ASSERT_EQ(got.size(), want.size()) << "head " << head << " query block " << qb;
      for (size_t r = 0; r < got.size(); ++r) {
        EXPECT_EQ(got[r].begin, want[r].begin) << "head " << head << " query block " << qb << " range " << r;
        EXPECT_EQ(got[r].end, want[r].end) << "head " << head << " query block " << qb << " range " << r;
      }
    }
  }
  int64_t listed = offsets.back(), dense = 0;
  for (int qb = 0; qb < n_qblocks; ++qb) {
    dense += (s.first_pos + std::min((qb + 1) * kSparseQueryBlock, s.n_q) - 1) / kSparseKeyBlock + 1;
  }
  std::cout << c.name << ": " << near_ties << " near-tie swaps; lists hold " << listed << " of "
            << dense * s.n_heads << " causal key blocks\n";
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, VslashEstimateTest,
    ::testing::Values(
        // name, {n_q, kv_len, first_pos, heads, kv heads, head dim}, {estimate, vertical, slash}
        Case{"FirstChunk", {300, 300, 0, 8, 2, 128}, {64, 20, 30}},
        Case{"MidCacheChunk", {200, 1200, 1000, 4, 1, 64}, {64, 50, 40}},
        Case{"ShortChunkKeepsEveryColumn", {40, 373, 333, 4, 4, 128}, {64, 1000, 5}},
        Case{"NoColumnsOddEstimate", {1000, 4000, 3000, 8, 2, 128}, {100, 0, 200}},
        Case{"NoDiagonals", {256, 700, 444, 4, 2, 64}, {32, 64, 0}},
        Case{"LongGqa", {2048, 8192, 6144, 32, 8, 128}, {64, 100, 500}}),
    [](const ::testing::TestParamInfo<Case>& info) { return info.param.name; });

TEST(VslashEstimate, RefusesChunksOutsideThePlan) {
  std::mt19937_64 rng(test::fresh_seed("VslashEstimate.Refuses"));
  const PagedProblem problem({200, 600, 400, 4, 2, 64}, rng);
  VslashEstimator small(4, 64, 100, 1000, {});
  EXPECT_THROW(small.build_lists(problem.args(nullptr, nullptr), nullptr), InputError);  // chunk > max_chunk
  VslashEstimator wrong_heads(8, 64, 200, 1000, {});
  EXPECT_THROW(wrong_heads.build_lists(problem.args(nullptr, nullptr), nullptr), InputError);
  EXPECT_THROW(VslashEstimator(4, 64, 2000, 1000, {}), InputError);  // chunk larger than the cache
}

}  // namespace
}  // namespace deltainfer::cuda
