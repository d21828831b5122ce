// Delta correction on the GPU: the correction kernel (propagate, recompute, interpolate; in
// place and out of place; gamma not dividing n_q) against its f64 formula on the same bf16
// inputs, and the whole unfused pipeline (sliding sparse pass, gathered strided rows through
// the dense kernel, correction) against an f64 reference, with the invariants of METHODS.md:
// gamma = 1 and window >= N give dense attention.
// Tolerances: the kernel adds in f32 and rounds once to bf16: rel L2 < 5e-3, and rows r equal
// o^d_r bit for bit; the pipeline: rel L2 < 1e-2, max abs < 6e-2 (two bf16 attention outputs).
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "backend/cuda/delta_correct.h"
#include "backend/cuda/sparse_prefill.h"
#include "core/error.h"
#include "gpu_test_support.h"
#include "reference_sparse_prefill.h"
#include "varlen_packing.h"

namespace deltainfer::cuda {
namespace {

using test::DeviceVec;

struct KernelCase {
  std::string name;
  int n_q;
  int gamma;
  int row_elems;
  DeltaMode mode;
  bool in_place;
};

class DeltaCorrectKernelTest : public ::testing::TestWithParam<KernelCase> {};

TEST_P(DeltaCorrectKernelTest, MatchesFormula) {
  const KernelCase& c = GetParam();
  std::mt19937_64 rng(test::fresh_seed(c.name));
  const int groups = strided_row_count(c.n_q, c.gamma);
  const size_t re = static_cast<size_t>(c.row_elems);
  const std::vector<float> sparse = test::random_bf16_values(static_cast<size_t>(c.n_q) * re, rng);
  const std::vector<float> dense = test::random_bf16_values(static_cast<size_t>(groups) * re, rng);
  DeviceVec<__nv_bfloat16> d_sparse(test::to_bf16(sparse)), d_dense(test::to_bf16(dense));
  DeviceVec<__nv_bfloat16> d_out(sparse.size());
  ASSERT_TRUE(d_sparse.ptr && d_dense.ptr && d_out.ptr);
  d_out.poison();
  DeltaCorrectArgs a;
  a.sparse = d_sparse.ptr;
  a.dense_rows = d_dense.ptr;
  a.out = c.in_place ? d_sparse.ptr : d_out.ptr;
  a.n_q = c.n_q;
  a.first_pos = 3 * c.gamma;
  a.gamma = c.gamma;
  a.row_elems = c.row_elems;
  a.mode = c.mode;
  delta_correct(a, nullptr);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  const std::vector<float> got = test::to_float(c.in_place ? d_sparse.download() : d_out.download());

  std::vector<double> want(got.size());
  bool rows_r_exact = true;
  for (int i = 0; i < c.n_q; ++i) {
    const int k = i / c.gamma;
    const int r = k * c.gamma;
    const double t = c.mode == DeltaMode::kInterpolate && k + 1 < groups
                         ? static_cast<double>(i - r) / c.gamma
                         : 0.0;
    for (size_t e = 0; e < re; ++e) {
      const size_t at = static_cast<size_t>(i) * re + e;
      const double d0 = dense[static_cast<size_t>(k) * re + e] - sparse[static_cast<size_t>(r) * re + e];
      const double d1 = k + 1 < groups ? dense[static_cast<size_t>(k + 1) * re + e] -
                                             sparse[static_cast<size_t>(r + c.gamma) * re + e]
                                       : d0;
      if (i == r) {
        want[at] = dense[static_cast<size_t>(k) * re + e];
        rows_r_exact = rows_r_exact && got[at] == static_cast<float>(want[at]);
      } else if (c.mode == DeltaMode::kRecompute) {
        want[at] = sparse[at];
      } else {
        want[at] = sparse[at] + (1.0 - t) * d0 + t * d1;
      }
    }
  }
  const double rel = test::relative_l2(got, want);
  std::cout << c.name << ": rel L2 " << rel << "\n";
  EXPECT_LT(rel, 5e-3);
  EXPECT_TRUE(rows_r_exact) << "rows r must be exactly o^d_r";
}

INSTANTIATE_TEST_SUITE_P(
    Modes, DeltaCorrectKernelTest,
    ::testing::Values(
        KernelCase{"propagate_g64_n1000_inplace", 1000, 64, 4096, DeltaMode::kPropagate, true},
        KernelCase{"propagate_g64_n1000", 1000, 64, 1024, DeltaMode::kPropagate, false},
        KernelCase{"propagate_g7_n100", 100, 7, 24, DeltaMode::kPropagate, true},
        KernelCase{"propagate_g1_n50", 50, 1, 128, DeltaMode::kPropagate, false},
        KernelCase{"recompute_g16_n333_inplace", 333, 16, 512, DeltaMode::kRecompute, true},
        KernelCase{"recompute_g64_n130", 130, 64, 256, DeltaMode::kRecompute, false},
        KernelCase{"interpolate_g64_n1000", 1000, 64, 1024, DeltaMode::kInterpolate, false},
        KernelCase{"interpolate_g5_n23", 23, 5, 64, DeltaMode::kInterpolate, false}),
    [](const ::testing::TestParamInfo<KernelCase>& param) { return param.param.name; });

TEST(DeltaCorrectArgsTest, RejectsBadArguments) {
  DeviceVec<__nv_bfloat16> buf(64);
  DeltaCorrectArgs a;
  a.sparse = buf.ptr;
  a.dense_rows = buf.ptr;
  a.out = buf.ptr;
  a.n_q = 8;
  a.row_elems = 8;
  a.gamma = 4;
  a.first_pos = 2;  // not a multiple of gamma
  EXPECT_THROW(delta_correct(a, nullptr), InputError);
  a.first_pos = 0;
  a.mode = DeltaMode::kInterpolate;  // in place
  EXPECT_THROW(delta_correct(a, nullptr), InputError);
  a.mode = DeltaMode::kPropagate;
  a.row_elems = 12;
  EXPECT_THROW(delta_correct(a, nullptr), InputError);
}

// gather_strided_rows_varlen against its host twin: 70 chunks of one packed q (more than one
// launch's table; one empty) in shuffled order, each's strided rows and positions at its own
// dense row, given in another order than the packing's. Rows and positions past the last stay
// poisoned.
TEST(GatherStridedRowsVarlen, MatchesHostTwin) {
  std::mt19937_64 rng(test::fresh_seed("gather strided rows varlen"));
  constexpr int kGamma = 16, kRowElems = 6 * 64, kSpare = 3;
  std::vector<VarlenChunk> chunks;
  for (int i = 0; i < 70; ++i) {
    const int n_q = i == 5 ? 0 : 1 + (i * 37) % 150;
    const int first_pos = ((i * 53) % 20) * kGamma;
    chunks.push_back({0, n_q, first_pos, first_pos + n_q, i, 0});
  }
  const int rows = test::pack_shuffled(chunks, rng);
  int strided_rows = 0;
  for (auto c = chunks.rbegin(); c != chunks.rend(); ++c) {  // dense rows in reverse chunk order
    c->delta_row = strided_rows;
    strided_rows += strided_row_count(c->n_q, kGamma);
  }
  const std::vector<float> q = test::random_bf16_values(static_cast<size_t>(rows) * kRowElems, rng);
  DeviceVec<__nv_bfloat16> d_q(test::to_bf16(q));
  DeviceVec<__nv_bfloat16> strided(static_cast<size_t>(strided_rows + kSpare) * kRowElems);
  DeviceVec<int32_t> positions(static_cast<size_t>(strided_rows + kSpare));
  ASSERT_TRUE(d_q.ptr && strided.ptr && positions.ptr);
  strided.poison();
  positions.poison();  // 0xffffffff: -1
  gather_strided_rows_varlen(d_q.ptr, chunks, kRowElems, kGamma, strided.ptr, positions.ptr, nullptr);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  const std::vector<float> got = test::to_float(strided.download());
  const std::vector<int32_t> got_pos = positions.download();

  std::vector<float> want(got.size(), NAN);
  std::vector<int32_t> want_pos(got_pos.size(), -1);
  for (const VarlenChunk& c : chunks) {
    for (int k = 0; k < strided_row_count(c.n_q, kGamma); ++k) {
      const size_t dst = static_cast<size_t>(c.delta_row + k);
      const size_t src = static_cast<size_t>(c.q_row + k * kGamma);
      std::copy(q.begin() + static_cast<std::ptrdiff_t>(src * kRowElems),
                q.begin() + static_cast<std::ptrdiff_t>((src + 1) * kRowElems),
                want.begin() + static_cast<std::ptrdiff_t>(dst * kRowElems));
      want_pos[dst] = c.first_pos + k * kGamma;
    }
  }
  size_t differ = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    differ += (std::isnan(want[i]) ? !std::isnan(got[i]) : got[i] != want[i]) ? 1 : 0;
  }
  EXPECT_EQ(differ, 0u) << "gathered elements that differ from the host twin (or spare rows written)";
  EXPECT_EQ(got_pos, want_pos);

  chunks[3].first_pos += 1;  // not at a multiple of gamma: refused before anything runs
  EXPECT_THROW(gather_strided_rows_varlen(d_q.ptr, chunks, kRowElems, kGamma, strided.ptr, positions.ptr, nullptr),
               InputError);
}

// delta_correct_varlen equals delta_correct run per chunk, bit for bit, in every mode: 70 chunks
// (more than one launch's table; one empty) of one packed batch in shuffled order, dense rows in
// another order, spare rows untouched.
TEST(DeltaCorrectVarlen, EqualsOneCallPerChunk) {
  std::mt19937_64 rng(test::fresh_seed("delta correct varlen"));
  constexpr int kGamma = 32, kRowElems = 4 * 128;
  std::vector<VarlenChunk> chunks;
  for (int i = 0; i < 70; ++i) {
    const int n_q = i == 9 ? 0 : 1 + (i * 41) % 170;
    const int first_pos = ((i * 29) % 13) * kGamma;
    chunks.push_back({0, n_q, first_pos, first_pos + n_q, i, 0});
  }
  const int rows = test::pack_shuffled(chunks, rng);
  int dense_count = 0;
  for (auto c = chunks.rbegin(); c != chunks.rend(); ++c) {
    c->delta_row = dense_count;
    dense_count += strided_row_count(c->n_q, kGamma);
  }
  const size_t elems = static_cast<size_t>(rows) * kRowElems;
  DeviceVec<__nv_bfloat16> sparse(test::to_bf16(test::random_bf16_values(elems, rng)));
  DeviceVec<__nv_bfloat16> dense(
      test::to_bf16(test::random_bf16_values(static_cast<size_t>(dense_count) * kRowElems, rng)));
  DeviceVec<__nv_bfloat16> batched(elems), alone(elems);
  ASSERT_TRUE(sparse.ptr && dense.ptr && batched.ptr && alone.ptr);
  for (const DeltaMode mode : {DeltaMode::kPropagate, DeltaMode::kRecompute, DeltaMode::kInterpolate}) {
    batched.poison();
    alone.poison();
    DeltaCorrectArgs base;
    base.sparse = sparse.ptr;
    base.dense_rows = dense.ptr;
    base.out = batched.ptr;
    base.gamma = kGamma;
    base.row_elems = kRowElems;
    base.mode = mode;
    delta_correct_varlen(base, chunks, nullptr);
    for (const VarlenChunk& c : chunks) {
      if (c.n_q == 0) continue;
      DeltaCorrectArgs one = base;
      one.sparse = sparse.ptr + static_cast<size_t>(c.q_row) * kRowElems;
      one.dense_rows = dense.ptr + static_cast<size_t>(c.delta_row) * kRowElems;
      one.out = alone.ptr + static_cast<size_t>(c.q_row) * kRowElems;
      one.n_q = c.n_q;
      one.first_pos = c.first_pos;
      delta_correct(one, nullptr);
    }
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    // Same bits everywhere: both left the spare rows poisoned (compared as raw bytes, NaN included).
    const std::vector<__nv_bfloat16> got = batched.download(), want = alone.download();
    EXPECT_EQ(std::memcmp(got.data(), want.data(), got.size() * sizeof(__nv_bfloat16)), 0)
        << "mode " << static_cast<int>(mode);
    const std::vector<float> values = test::to_float(got);
    EXPECT_TRUE(std::isnan(values.front())) << "the spare row before the first chunk was written";
  }
  DeltaCorrectArgs in_place;
  in_place.sparse = in_place.out = batched.ptr;
  in_place.dense_rows = dense.ptr;
  in_place.gamma = kGamma;
  in_place.row_elems = kRowElems;
  in_place.mode = DeltaMode::kInterpolate;
  EXPECT_THROW(delta_correct_varlen(in_place, chunks, nullptr), InputError);
}

// The unfused pipeline of a Delta prefill against the f64 reference.
struct PipelineCase {
  std::string name;
  test::ProblemShape shape;
  int window;
  int sink;
  int gamma;
};

class DeltaPipelineTest : public ::testing::TestWithParam<PipelineCase> {};

TEST_P(DeltaPipelineTest, MatchesF64Reference) {
  int device = 0, major = 0;
  cudaGetDevice(&device);
  cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device);
  if (major != 9) GTEST_SKIP() << "the sliding kernel needs a Hopper GPU";
  const PipelineCase& c = GetParam();
  std::mt19937_64 rng(test::fresh_seed(c.name));
  const test::ProblemShape& s = c.shape;
  test::PagedProblem prob(s, rng);
  const int row_elems = static_cast<int>(prob.row_elems());
  const int n_strided = strided_row_count(s.n_q, c.gamma);
  DeviceVec<__nv_bfloat16> out(static_cast<size_t>(s.n_q) * prob.row_elems());
  DeviceVec<__nv_bfloat16> q_strided(static_cast<size_t>(n_strided) * prob.row_elems());
  DeviceVec<__nv_bfloat16> dense_rows(static_cast<size_t>(n_strided) * prob.row_elems());
  DeviceVec<int32_t> positions(static_cast<size_t>(n_strided));
  out.poison();
  dense_rows.poison();

  sliding_prefill_attention(prob.args(out.ptr, nullptr), c.window, c.sink, nullptr);
  gather_strided_rows(prob.d_q.ptr, s.n_q, row_elems, c.gamma, q_strided.ptr, nullptr);
  strided_positions(s.n_q, s.first_pos, c.gamma, positions.ptr, nullptr);
  PrefillAttentionArgs dense = prob.args(dense_rows.ptr, nullptr);
  dense.q = q_strided.ptr;
  dense.q_pos = positions.ptr;
  dense.n_q = n_strided;
  prefill_attention(dense, nullptr);
  DeltaCorrectArgs corr;
  corr.sparse = out.ptr;
  corr.dense_rows = dense_rows.ptr;
  corr.out = out.ptr;
  corr.n_q = s.n_q;
  corr.first_pos = s.first_pos;
  corr.gamma = c.gamma;
  corr.row_elems = row_elems;
  delta_correct(corr, nullptr);
  ASSERT_EQ(cudaGetLastError(), cudaSuccess);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  const std::vector<float> got = test::to_float(out.download());

  const auto sliding = [&c](int pos, int j) { return j < c.sink || j > pos - c.window; };
  const auto all = [](int, int) { return true; };
  const int d = s.head_dim;
  std::vector<double> ref(static_cast<size_t>(d)), sparse_r(static_cast<size_t>(d)),
      dense_r(static_cast<size_t>(d));
  std::vector<double> want;
  std::vector<float> have;
  for (const int i : test::checked_rows(s.n_q)) {
    const int r = i - (s.first_pos + i) % c.gamma;
    for (int h = 0; h < s.n_heads; ++h) {
      prob.reference(i, h, sliding, ref.data());
      prob.reference(r, h, sliding, sparse_r.data());
      prob.reference(r, h, all, dense_r.data());
      const size_t o = (static_cast<size_t>(i) * s.n_heads + static_cast<size_t>(h)) * d;
      for (int e = 0; e < d; ++e) {
        const size_t ue = static_cast<size_t>(e);
        want.push_back(ref[ue] + dense_r[ue] - sparse_r[ue]);
        have.push_back(got[o + ue]);
      }
    }
  }
  const double rel = test::relative_l2(have, want);
  const double max_abs = test::max_abs_error(have, want);
  std::cout << c.name << ": rel L2 " << rel << ", max abs " << max_abs << "\n";
  EXPECT_LT(rel, 1e-2);
  EXPECT_LT(max_abs, 6e-2);
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, DeltaPipelineTest,
    ::testing::Values(
        PipelineCase{"g64_n3000_w512_s64_d128_g4", {3000, 3000, 0, 4, 1, 128}, 512, 64, 64},
        PipelineCase{"g1_is_dense_n500_w16_d64", {500, 500, 0, 4, 2, 64}, 16, 0, 1},
        PipelineCase{"window_ge_n_is_dense_g64_n700", {700, 700, 0, 4, 2, 128}, 100000, 0, 64},
        PipelineCase{"g100_n1000_w128_s4_d64_g3", {1000, 1000, 0, 3, 1, 64}, 128, 4, 100},
        PipelineCase{"chunk_first512_g64_n600_kv1112", {600, 1112, 512, 4, 2, 128}, 200, 64, 64}),
    [](const ::testing::TestParamInfo<PipelineCase>& param) { return param.param.name; });

}  // namespace
}  // namespace deltainfer::cuda
