// Split-KV decode attention against the f64 CPU twin (reference_attention.h) on the same
// bf16-rounded inputs: paged KV with shuffled physical pages whose unused slots hold NaN bit
// patterns, GQA groups 1..16, head dims 64/128, batches of unequal lengths (0, 1, 63, 65, 1000,
// 70000 tokens), and a max_kv_len bound larger than the real lengths (other split counts).
// Tolerance: bf16 output, rel L2 < 1e-2 per case (seen: a few 1e-3); log-sum-exp is f32,
// abs error < 2e-3. Outputs are poisoned (NaN) before the run and checked to be fully written.
#include <cuda_bf16.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "backend/cuda/decode_attention.h"
#include "backend/cuda/device_buffer.h"
#include "core/error.h"
#include "gpu/gpu_test_support.h"
#include "gpu/reference_attention.h"

namespace deltainfer::cuda {
namespace {

struct DecodeCase {
  std::string name;
  std::vector<int> kv_lens;
  int n_heads;
  int n_kv_heads;
  int head_dim;
  int extra_bound = 0;  // added to max(kv_lens) for max_kv_len
};

std::ostream& operator<<(std::ostream& os, const DecodeCase& c) { return os << c.name; }

struct PagedInputs {
  test::PagedCacheHost cache;
  std::vector<__nv_bfloat16> k_bf16, v_bf16;
  std::vector<int32_t> page_table;
  int stride = 0;
  int max_kv_len = 0;
};

PagedInputs make_paged_inputs(const DecodeCase& c, std::mt19937_64& rng) {
  PagedInputs in;
  in.max_kv_len = *std::max_element(c.kv_lens.begin(), c.kv_lens.end()) + c.extra_bound;
  in.stride = std::max(1, (in.max_kv_len + kKvPageSize - 1) / kKvPageSize);
  int used_pages = 0;
  for (int len : c.kv_lens) used_pages += (len + kKvPageSize - 1) / kKvPageSize;
  const int num_pages = used_pages + 3;  // spare pages stay NaN
  std::vector<int32_t> physical(static_cast<size_t>(num_pages));
  std::iota(physical.begin(), physical.end(), 0);
  std::shuffle(physical.begin(), physical.end(), rng);

  in.cache.n_kv_heads = c.n_kv_heads;
  in.cache.head_dim = c.head_dim;
  in.cache.page_size = kKvPageSize;
  const size_t pool = static_cast<size_t>(num_pages) * c.n_kv_heads * kKvPageSize * c.head_dim;
  in.cache.k.assign(pool, NAN);
  in.cache.v.assign(pool, NAN);
  in.page_table.assign(c.kv_lens.size() * in.stride, -1);
  int next = 0;
  for (size_t s = 0; s < c.kv_lens.size(); ++s) {
    const int pages = (c.kv_lens[s] + kKvPageSize - 1) / kKvPageSize;
    for (int pg = 0; pg < pages; ++pg) in.page_table[s * in.stride + pg] = physical[static_cast<size_t>(next++)];
    for (int t = 0; t < c.kv_lens[s]; ++t) {
      const int page = in.page_table[s * in.stride + t / kKvPageSize];
      for (int kvh = 0; kvh < c.n_kv_heads; ++kvh) {
        const size_t base = in.cache.index(page, kvh, t % kKvPageSize);
        const std::vector<float> k = test::random_bf16_values(c.head_dim, rng);
        const std::vector<float> v = test::random_bf16_values(c.head_dim, rng);
        std::copy(k.begin(), k.end(), in.cache.k.begin() + static_cast<std::ptrdiff_t>(base));
        std::copy(v.begin(), v.end(), in.cache.v.begin() + static_cast<std::ptrdiff_t>(base));
      }
    }
  }
  // Unwritten slots and spare pages keep NaN in bf16 too (0xFFFF), as uninitialized memory might.
  in.k_bf16 = test::to_bf16(in.cache.k);
  in.v_bf16 = test::to_bf16(in.cache.v);
  return in;
}

class DecodeAttentionTest : public ::testing::TestWithParam<DecodeCase> {};

TEST_P(DecodeAttentionTest, MatchesCpuTwin) {
  const DecodeCase& c = GetParam();
  std::mt19937_64 rng(test::fresh_seed("decode_attention " + c.name));
  const PagedInputs in = make_paged_inputs(c, rng);
  const int batch = static_cast<int>(c.kv_lens.size());
  const std::vector<float> q = test::random_bf16_values(static_cast<size_t>(batch) * c.n_heads * c.head_dim, rng);
  const float scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));

  auto d_q = to_device(test::to_bf16(q));
  auto d_k = to_device(in.k_bf16);
  auto d_v = to_device(in.v_bf16);
  auto d_pages = to_device(in.page_table);
  auto d_lens = to_device(std::vector<int32_t>(c.kv_lens.begin(), c.kv_lens.end()));
  DeviceBuffer<__nv_bfloat16> d_out(q.size());
  DeviceBuffer<float> d_lse(static_cast<size_t>(batch) * c.n_heads);
  const DecodeAttentionPlan plan = plan_decode_attention(batch, c.n_heads, c.n_kv_heads, c.head_dim, in.max_kv_len,
                                                         current_device_sm_count());
  DeviceBuffer<unsigned char> workspace(plan.workspace_bytes);
  d_out.fill_bytes(0xFF);
  d_lse.fill_bytes(0xFF);
  workspace.fill_bytes(0xFF);

  DecodeAttentionArgs args;
  args.q = d_q.data();
  args.kv.k_pool = d_k.data();
  args.kv.v_pool = d_v.data();
  args.kv.num_pages =
      static_cast<int>(in.k_bf16.size() / (static_cast<size_t>(c.n_kv_heads) * kKvPageSize * c.head_dim));
  args.kv.page_table = d_pages.data();
  args.kv.page_table_stride = in.stride;
  args.kv.kv_lens = d_lens.data();
  args.kv.batch = batch;
  args.kv.n_kv_heads = c.n_kv_heads;
  args.kv.head_dim = c.head_dim;
  args.kv.max_kv_len = in.max_kv_len;
  args.n_heads = c.n_heads;
  args.softmax_scale = scale;
  args.out = d_out.data();
  args.lse = d_lse.data();
  args.workspace = workspace.data();
  args.workspace_bytes = workspace.bytes();
  decode_attention(args, nullptr);
  CUDA_CHECK(cudaDeviceSynchronize());
  const std::vector<float> out = test::to_float(d_out.download());
  const std::vector<float> lse = d_lse.download();

  std::vector<double> want(q.size()), want_lse(lse.size());
  for (int s = 0; s < batch; ++s) {
    const size_t row = static_cast<size_t>(s) * c.n_heads;
    test::reference_decode_attention(q, row * c.head_dim, in.cache, in.page_table.data() + s * in.stride,
                                     c.kv_lens[static_cast<size_t>(s)], c.n_heads, scale, want, row * c.head_dim,
                                     want_lse, row);
  }
  for (size_t i = 0; i < out.size(); ++i) ASSERT_FALSE(std::isnan(out[i])) << "out[" << i << "] not written";
  const double err = test::relative_l2(out, want);
  double lse_err = 0.0;
  for (size_t i = 0; i < lse.size(); ++i) {
    if (std::isinf(want_lse[i])) {
      EXPECT_TRUE(std::isinf(lse[i]) && lse[i] < 0) << "lse[" << i << "] of an empty sequence";
      continue;
    }
    lse_err = std::max(lse_err, std::fabs(static_cast<double>(lse[i]) - want_lse[i]));
  }
  std::cout << c.name << ": splits " << plan.num_splits << ", rel L2 " << err << ", lse max abs err " << lse_err
            << "\n";
  EXPECT_LT(err, 1e-2);
  EXPECT_LT(lse_err, 2e-3);
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, DecodeAttentionTest,
    ::testing::Values(DecodeCase{"d128_g4_len1", {1}, 32, 8, 128},
                      DecodeCase{"d128_g4_len63", {63}, 32, 8, 128},
                      DecodeCase{"d128_g4_len65", {65}, 32, 8, 128},
                      DecodeCase{"d64_g3_batch2_1000_17", {1000, 17}, 9, 3, 64},
                      DecodeCase{"d128_g7_batch3_with_empty", {1000, 0, 4097}, 28, 4, 128},
                      DecodeCase{"d128_g16_two_head_tiles", {300, 5000}, 16, 1, 128},
                      DecodeCase{"d64_g1_mha_loose_bound", {2000}, 4, 4, 64, 50000},
                      DecodeCase{"d64_g12_two_head_tiles", {777}, 12, 1, 64},
                      DecodeCase{"d128_g4_len70000_scattered", {70000}, 8, 2, 128},
                      DecodeCase{"d128_g4_batch4_mixed", {65, 1, 70000 / 7, 2048}, 32, 8, 128}),
    [](const ::testing::TestParamInfo<DecodeCase>& info) { return info.param.name; });

TEST(DecodeAttentionErrors, RefusesUnsupportedShapesAndSmallWorkspace) {
  EXPECT_THROW(plan_decode_attention(1, 32, 8, 96, 100, 132), InputError);
  EXPECT_THROW(plan_decode_attention(1, 30, 8, 128, 100, 132), InputError);
  EXPECT_THROW(plan_decode_attention(1, 64, 2, 128, 100, 132), InputError);  // group 32
  DecodeAttentionArgs args;
  args.kv.batch = 1;
  args.n_heads = 32;
  args.kv.n_kv_heads = 8;
  args.kv.head_dim = 128;
  args.kv.max_kv_len = 1000;
  args.kv.page_table_stride = 16;
  EXPECT_THROW(decode_attention(args, nullptr), InputError);  // no pools, no workspace
}

TEST(DecodeAttentionPlanTest, FillsTheChipAtBatchOne) {
  const DecodeAttentionPlan plan = plan_decode_attention(1, 32, 8, 128, 131072, 132);
  EXPECT_GE(plan.num_splits * 8, 132) << "batch 1 at 128K should put a block on every SM";
  const DecodeAttentionPlan short_plan = plan_decode_attention(1, 32, 8, 128, 100, 132);
  EXPECT_EQ(short_plan.num_splits, 1);
}

}  // namespace
}  // namespace deltainfer::cuda
