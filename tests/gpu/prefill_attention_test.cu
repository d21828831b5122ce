// Dense causal prefill attention on the GPU against an f64 CPU reference on the same
// bf16-rounded inputs, over paged KV with a shuffled page table, GQA, head dims 64/128,
// chunked prefill (first_pos > 0) and explicit query position lists.
// Tolerance: bf16 output, so rel L2 error < 1e-2 and max abs error < 4e-2 per case (observed
// errors are a few 1e-3); log-sum-exp is computed in f32: abs error < 5e-3.
// Every case runs on each kernel (sm80, sm90, and the FA3-style sm90ws); the launch is awaited
// through a watchdog so that a kernel hung in a barrier wait fails its case instead of hanging.
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <iostream>
#include <numeric>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "backend/cuda/prefill_attention.h"
#include "core/error.h"
#include "stream_watchdog.h"

namespace deltainfer::cuda {
namespace {

#define CUDA_OK(call)                                                              \
  do {                                                                             \
    const cudaError_t cuda_ok_err_ = (call);                                       \
    ASSERT_EQ(cuda_ok_err_, cudaSuccess) << #call << ": " << cudaGetErrorString(cuda_ok_err_); \
  } while (0)

template <typename T>
struct DeviceBuffer {
  T* ptr = nullptr;
  explicit DeviceBuffer(size_t n) {
    if (cudaMalloc(&ptr, std::max<size_t>(n, 1) * sizeof(T)) != cudaSuccess) ptr = nullptr;
  }
  ~DeviceBuffer() { cudaFree(ptr); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
};

struct Case {
  std::string name;
  int n_q;
  int kv_len;
  int first_pos;        // contiguous mode
  int stride;           // > 0: explicit positions, every stride-th key ending at kv_len - 1
  bool random_positions;  // explicit positions: a random increasing subset of [0, kv_len)
  int n_heads;
  int n_kv_heads;
  int head_dim;
  PrefillKernel kernel;
};

std::vector<int32_t> query_positions(const Case& c, std::mt19937& rng) {
  std::vector<int32_t> pos(static_cast<size_t>(c.n_q));
  if (c.random_positions) {
    std::vector<int32_t> all(static_cast<size_t>(c.kv_len));
    std::iota(all.begin(), all.end(), 0);
    std::shuffle(all.begin(), all.end(), rng);
    std::copy_n(all.begin(), c.n_q, pos.begin());
    std::sort(pos.begin(), pos.end());
  } else if (c.stride > 0) {
    for (int i = 0; i < c.n_q; ++i) pos[static_cast<size_t>(i)] = c.kv_len - 1 - (c.n_q - 1 - i) * c.stride;
  } else {
    std::iota(pos.begin(), pos.end(), c.first_pos);
  }
  return pos;
}

std::vector<__nv_bfloat16> random_bf16(size_t n, float sigma, std::mt19937& rng) {
  std::normal_distribution<float> dist(0.0f, sigma);
  std::vector<__nv_bfloat16> v(n);
  for (auto& x : v) x = __float2bfloat16(dist(rng));
  return v;
}

// Rows checked against the reference: all of them for small cases, a spread sample (always
// including both ends) for large ones so the f64 reference stays quick.
std::vector<int> checked_rows(int n_q) {
  std::vector<int> rows;
  const int step = n_q > 1100 ? 13 : 1;
  for (int i = 0; i < n_q; i += step) rows.push_back(i);
  for (int i = std::max(0, n_q - 70); i < n_q; ++i) rows.push_back(i);
  std::sort(rows.begin(), rows.end());
  rows.erase(std::unique(rows.begin(), rows.end()), rows.end());
  return rows;
}

class PrefillAttentionTest : public ::testing::TestWithParam<Case> {};

TEST_P(PrefillAttentionTest, MatchesF64Reference) {
  const Case& c = GetParam();
  const uint32_t seed = std::random_device{}();
  std::cout << "seed " << seed << " case " << c.name << "\n";
  std::mt19937 rng(seed);

  const int d = c.head_dim;
  const int group = c.n_heads / c.n_kv_heads;
  const int seq_pages = (c.kv_len + kKvPageSize - 1) / kKvPageSize;
  const int num_pages = seq_pages + 3;  // extra physical pages nobody reads
  const size_t page_elems = static_cast<size_t>(c.n_kv_heads) * kKvPageSize * d;
  const size_t pool_elems = page_elems * static_cast<size_t>(num_pages);
  const size_t q_elems = static_cast<size_t>(c.n_q) * c.n_heads * d;

  const std::vector<int32_t> pos = query_positions(c, rng);
  std::vector<int32_t> pages(static_cast<size_t>(num_pages));
  std::iota(pages.begin(), pages.end(), 0);
  std::shuffle(pages.begin(), pages.end(), rng);
  pages.resize(static_cast<size_t>(seq_pages));

  const std::vector<__nv_bfloat16> q = random_bf16(q_elems, 1.5f, rng);
  std::vector<__nv_bfloat16> k = random_bf16(pool_elems, 1.0f, rng);
  std::vector<__nv_bfloat16> v = random_bf16(pool_elems, 1.0f, rng);
  // Slots past kv_len hold NaN: the kernel must neither use nor multiply them.
  const auto key_offset = [&](int key, int kvh) {
    const size_t page = static_cast<size_t>(pages[static_cast<size_t>(key / kKvPageSize)]);
    return page * page_elems +
           (static_cast<size_t>(kvh) * kKvPageSize + key % kKvPageSize) * d;
  };
  for (int key = c.kv_len; key < seq_pages * kKvPageSize; ++key) {
    for (int kvh = 0; kvh < c.n_kv_heads; ++kvh) {
      for (int e = 0; e < d; ++e) {
        k[key_offset(key, kvh) + e] = __float2bfloat16(NAN);
        v[key_offset(key, kvh) + e] = __float2bfloat16(NAN);
      }
    }
  }

  DeviceBuffer<__nv_bfloat16> d_q(q_elems), d_k(pool_elems), d_v(pool_elems), d_out(q_elems);
  DeviceBuffer<float> d_lse(static_cast<size_t>(c.n_q) * c.n_heads);
  DeviceBuffer<int32_t> d_pages(pages.size()), d_pos(pos.size());
  ASSERT_TRUE(d_q.ptr && d_k.ptr && d_v.ptr && d_out.ptr && d_lse.ptr && d_pages.ptr && d_pos.ptr);
  CUDA_OK(cudaMemcpy(d_q.ptr, q.data(), q_elems * 2, cudaMemcpyHostToDevice));
  CUDA_OK(cudaMemcpy(d_k.ptr, k.data(), pool_elems * 2, cudaMemcpyHostToDevice));
  CUDA_OK(cudaMemcpy(d_v.ptr, v.data(), pool_elems * 2, cudaMemcpyHostToDevice));
  CUDA_OK(cudaMemcpy(d_pages.ptr, pages.data(), pages.size() * 4, cudaMemcpyHostToDevice));
  CUDA_OK(cudaMemcpy(d_pos.ptr, pos.data(), pos.size() * 4, cudaMemcpyHostToDevice));
  CUDA_OK(cudaMemset(d_out.ptr, 0xff, q_elems * 2));  // bf16 NaN
  CUDA_OK(cudaMemset(d_lse.ptr, 0xff, static_cast<size_t>(c.n_q) * c.n_heads * 4));

  PrefillAttentionArgs args;
  args.q = d_q.ptr;
  const bool explicit_positions = c.stride > 0 || c.random_positions;
  args.q_pos = explicit_positions ? d_pos.ptr : nullptr;
  args.first_pos = c.first_pos;
  args.n_q = c.n_q;
  args.n_heads = c.n_heads;
  args.softmax_scale = 1.0f / std::sqrt(static_cast<float>(d));
  args.kv = bf16_sequence_kv(d_k.ptr, d_v.ptr, num_pages, c.n_kv_heads, d, d_pages.ptr, c.kv_len);
  args.out = d_out.ptr;
  args.lse = d_lse.ptr;
  prefill_attention(args, nullptr, c.kernel);
  CUDA_OK(cudaGetLastError());
  CUDA_OK(test::sync_or_exit(nullptr, c.name));

  std::vector<__nv_bfloat16> out(q_elems);
  std::vector<float> lse(static_cast<size_t>(c.n_q) * c.n_heads);
  CUDA_OK(cudaMemcpy(out.data(), d_out.ptr, q_elems * 2, cudaMemcpyDeviceToHost));
  CUDA_OK(cudaMemcpy(lse.data(), d_lse.ptr, lse.size() * 4, cudaMemcpyDeviceToHost));

  size_t unwritten = 0;
  for (const auto& x : out) unwritten += std::isfinite(__bfloat162float(x)) ? 0 : 1;
  for (const float x : lse) unwritten += std::isfinite(x) ? 0 : 1;
  ASSERT_EQ(unwritten, 0u) << "elements left poisoned or non-finite";

  double err2 = 0.0, ref2 = 0.0, max_abs = 0.0, max_lse = 0.0;
  std::vector<double> scores, acc(static_cast<size_t>(d));
  for (const int i : checked_rows(c.n_q)) {
    const int p = pos[static_cast<size_t>(i)];
    for (int h = 0; h < c.n_heads; ++h) {
      const int kvh = h / group;
      const __nv_bfloat16* qi = &q[(static_cast<size_t>(i) * c.n_heads + h) * d];
      scores.assign(static_cast<size_t>(p) + 1, 0.0);
      double mx = -INFINITY;
      for (int j = 0; j <= p; ++j) {
        const __nv_bfloat16* kj = &k[key_offset(j, kvh)];
        double dot = 0.0;
        for (int e = 0; e < d; ++e) {
          dot += static_cast<double>(__bfloat162float(qi[e])) * __bfloat162float(kj[e]);
        }
        scores[static_cast<size_t>(j)] = dot * args.softmax_scale;
        mx = std::max(mx, scores[static_cast<size_t>(j)]);
      }
      double sum = 0.0;
      std::fill(acc.begin(), acc.end(), 0.0);
      for (int j = 0; j <= p; ++j) {
        const double w = std::exp(scores[static_cast<size_t>(j)] - mx);
        sum += w;
        const __nv_bfloat16* vj = &v[key_offset(j, kvh)];
        for (int e = 0; e < d; ++e) acc[static_cast<size_t>(e)] += w * __bfloat162float(vj[e]);
      }
      const size_t o = (static_cast<size_t>(i) * c.n_heads + h) * d;
      for (int e = 0; e < d; ++e) {
        const double ref = acc[static_cast<size_t>(e)] / sum;
        const double diff = __bfloat162float(out[o + static_cast<size_t>(e)]) - ref;
        err2 += diff * diff;
        ref2 += ref * ref;
        max_abs = std::max(max_abs, std::abs(diff));
      }
      const double ref_lse = mx + std::log(sum);
      max_lse = std::max(max_lse, std::abs(lse[static_cast<size_t>(i) * c.n_heads + h] - ref_lse));
    }
  }
  const double rel = std::sqrt(err2 / ref2);
  std::cout << c.name << ": rel L2 " << rel << ", max abs " << max_abs << ", max lse err "
            << max_lse << "\n";
  EXPECT_LT(rel, 1e-2);
  EXPECT_LT(max_abs, 4e-2);
  EXPECT_LT(max_lse, 5e-3);
}

std::vector<Case> cases() {
  // name, n_q, kv_len, first_pos, stride, random, heads, kv heads, d
  const std::vector<Case> shapes = {
      {"n1_d128_g1", 1, 1, 0, 0, false, 2, 2, 128, {}},
      {"n63_d64_g4", 63, 63, 0, 0, false, 8, 2, 64, {}},
      {"n65_d128_g3", 65, 65, 0, 0, false, 6, 2, 128, {}},
      {"n1000_d128_g4", 1000, 1000, 0, 0, false, 8, 2, 128, {}},
      {"n1000_d64_g1", 1000, 1000, 0, 0, false, 2, 2, 64, {}},
      {"n4097_d128_g4", 4097, 4097, 0, 0, false, 4, 1, 128, {}},
      {"n4097_d64_g3", 4097, 4097, 0, 0, false, 3, 1, 64, {}},
      {"chunk_first700_n300_d128_g4", 300, 1000, 700, 0, false, 8, 2, 128, {}},
      {"chunk_first130_n65_d64_g3", 65, 195, 130, 0, false, 6, 2, 64, {}},
      {"chunk_future_keys_n100_kv300_d128", 100, 300, 0, 0, false, 4, 2, 128, {}},
      {"strided8_n125_kv1000_d128_g4", 125, 1000, 0, 8, false, 8, 2, 128, {}},
      {"strided16_n257_kv4100_d64_g3", 257, 4100, 0, 16, false, 3, 1, 64, {}},
      {"random_pos_n100_kv777_d64_g1", 100, 777, 0, 0, true, 2, 2, 64, {}},
      {"random_pos_n300_kv2000_d128_g4", 300, 2000, 0, 0, true, 4, 1, 128, {}},
      // kv_len a multiple of 64 (every shape above has a partial last page): no V tail map.
      // 192: the last 128-key tile's second page lies past the sequence (its first page is
      // loaded twice by sm90ws) and the last query block has exactly 64 rows (the second
      // consumer warpgroup has none); 256: whole tiles, two full query blocks.
      {"kv64x3_n192_d64_g1", 192, 192, 0, 0, false, 2, 2, 64, {}},
      {"kv64x4_n256_d128_g4", 256, 256, 0, 0, false, 8, 2, 128, {}},
      {"chunk_first64_n64_kv128_d128_g3", 64, 128, 64, 0, false, 6, 2, 128, {}},
  };
  const std::pair<PrefillKernel, const char*> kernels[] = {
      {PrefillKernel::kSm80, "_sm80"}, {PrefillKernel::kSm90, "_sm90"}, {PrefillKernel::kSm90Ws, "_sm90ws"}};
  std::vector<Case> all;
  for (const auto& [kernel, suffix] : kernels) {
    for (Case c : shapes) {
      c.kernel = kernel;
      c.name += suffix;
      all.push_back(c);
    }
  }
  return all;
}

INSTANTIATE_TEST_SUITE_P(Shapes, PrefillAttentionTest, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<Case>& info) { return info.param.name; });

TEST(PrefillAttentionArgsTest, RejectsUnsupportedHeadDim) {
  PrefillAttentionArgs args;
  args.kv.head_dim = 96;
  args.n_heads = 4;
  args.kv.n_kv_heads = 2;
  EXPECT_THROW(prefill_attention(args, nullptr), InputError);
  EXPECT_THROW(prefill_attention(args, nullptr, PrefillKernel::kSm90Ws), InputError);
}

// Arguments every check passes but the one a case breaks (host pointers: nothing launches).
PrefillAttentionArgs checked_args(const __nv_bfloat16* values, const int32_t* table, __nv_bfloat16* out) {
  PrefillAttentionArgs args;
  args.q = values;
  args.n_q = 1;
  args.n_heads = 4;
  args.softmax_scale = 0.125f;
  args.kv = bf16_sequence_kv(values, values, 1, 2, 64, table, 1);
  args.out = out;
  return args;
}

void expect_refused(const PrefillAttentionArgs& args, const std::string& part) {
  try {
    prefill_attention(args, nullptr);
    ADD_FAILURE() << "accepted; expected an InputError naming " << part;
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
  }
}

TEST(PrefillAttentionArgsTest, RefusesCachesItCannotRead) {
  const std::vector<__nv_bfloat16> values(64);
  std::vector<__nv_bfloat16> out(64);
  const int32_t table = 0;
  const float scales = 1.0f;
  PrefillAttentionArgs args = checked_args(values.data(), &table, out.data());
  args.kv.dtype = KvDtype::Fp8E4m3;  // FP8 caches are staged to bf16 first
  args.kv.k_scales = args.kv.v_scales = &scales;
  expect_refused(args, "kv_fp8_stage.h");
  args = checked_args(values.data(), &table, out.data());
  args.kv.batch = 2;  // a single-sequence call reads one sequence
  expect_refused(args, "sequence_kv");
  args = checked_args(values.data(), &table, out.data());
  args.kv.num_pages = 0;  // the Hopper kernel bounds its loads by it
  expect_refused(args, "num_pages");
  args = checked_args(values.data(), &table, out.data());
  args.kv.v_pool = nullptr;
  expect_refused(args, "v_pool");
  args = checked_args(values.data(), &table, out.data());
  args.kv.max_kv_len = 65;  // one table entry holds 64 keys
  expect_refused(args, "page_table_stride");
}

}  // namespace
}  // namespace deltainfer::cuda
