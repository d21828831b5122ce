// Element-wise kernels against their CPU twins in backend/cpu/ops.h, fresh random inputs.
// Tolerances: outputs rounded to bf16 carry a relative error of at most 2^-9 of the value, so
// element-wise |gpu - cpu| <= 4e-3 * |cpu| + 1e-5 (rmsnorm, swiglu), and for RoPE
// <= 4e-3 * (|x0| + |x1|) per rotated pair; gathers, adds and conversions are exact.
#include <cuda_bf16.h>
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "backend/cpu/ops.h"
#include "backend/cuda/decode_attention.h"
#include "backend/cuda/device_buffer.h"
#include "backend/cuda/elementwise.h"
#include "gpu/gpu_test_support.h"

namespace deltainfer::cuda {
namespace {

void expect_close(const std::vector<float>& got, const std::vector<float>& want, double rel, const char* what) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    ASSERT_FALSE(std::isnan(got[i])) << what << "[" << i << "] not written";
    ASSERT_LE(std::fabs(got[i] - want[i]), rel * std::fabs(want[i]) + 1e-5) << what << "[" << i << "]";
  }
}

TEST(Elementwise, RmsNormMatchesCpu) {
  std::mt19937_64 rng(test::fresh_seed("rmsnorm"));
  for (const auto& [rows, dim] : {std::pair<int, int>{7, 1000}, {3, 4096}, {1, 64}}) {
    const std::vector<float> x = test::random_bf16_values(static_cast<size_t>(rows) * dim, rng, 3.0f);
    const std::vector<float> gain = test::random_bf16_values(static_cast<size_t>(dim), rng);
    std::vector<float> want(x.size());
    backend::cpu::rmsnorm(x.data(), gain.data(), want.data(), rows, dim, 1e-5f);
    auto d_x = to_device(x);
    auto d_xb = to_device(test::to_bf16(x));
    auto d_gain = to_device(test::to_bf16(gain));
    DeviceBuffer<__nv_bfloat16> d_y(x.size());
    d_y.fill_bytes(0xFF);
    rmsnorm(d_x.data(), d_gain.data(), d_y.data(), rows, dim, 1e-5f, nullptr);
    expect_close(test::to_float(d_y.download()), want, 4e-3, "rmsnorm f32");
    d_y.fill_bytes(0xFF);
    rmsnorm(d_xb.data(), d_gain.data(), d_y.data(), rows, dim, 1e-5f, nullptr);
    expect_close(test::to_float(d_y.download()), want, 4e-3, "rmsnorm bf16");
  }
}

struct RopeCase {
  int head_dim;
  model::RopeStyle style;
  float scaling_factor;
};

TEST(Elementwise, RopeAppendMatchesCpuAndFillsOnlyItsSlots) {
  std::mt19937_64 rng(test::fresh_seed("rope_append_kv"));
  const RopeCase cases[] = {{128, model::RopeStyle::HalfSplit, 8.0f}, {64, model::RopeStyle::Interleaved, 1.0f},
                            {128, model::RopeStyle::Interleaved, 8.0f}, {64, model::RopeStyle::HalfSplit, 1.0f}};
  for (const RopeCase& rc : cases) {
    model::ModelConfig config;
    config.head_dim = rc.head_dim;
    config.rope_theta = 500000.0f;
    config.rope_scaling.factor = rc.scaling_factor;
    const int n_heads = 6, n_kv_heads = 2, d = rc.head_dim;
    // Two sequences; token positions include page edges and a long-context position.
    const std::vector<int32_t> positions = {0, 1, 63, 64, 100000, 5, 130000};
    const std::vector<int32_t> token_seq = {0, 0, 0, 0, 0, 1, 1};
    const int n = static_cast<int>(positions.size());
    const int stride_pages = 131072 / kKvPageSize;
    std::vector<int32_t> table(2 * static_cast<size_t>(stride_pages));
    for (size_t i = 0; i < table.size(); ++i) table[i] = static_cast<int32_t>((i * 7919) % table.size());
    const int num_pages = static_cast<int>(table.size());
    const int64_t qkv_stride = static_cast<int64_t>(n_heads + 2 * n_kv_heads) * d;  // fused QKV rows
    const std::vector<float> qkv = test::random_bf16_values(static_cast<size_t>(n) * qkv_stride, rng);
    std::vector<float> inv_freq(static_cast<size_t>(d / 2));
    backend::cpu::rope_inverse_frequencies(config, inv_freq.data());

    auto d_qkv = to_device(test::to_bf16(qkv));
    auto d_pos = to_device(positions);
    auto d_seq = to_device(token_seq);
    auto d_table = to_device(table);
    auto d_inv = to_device(inv_freq);
    const size_t pool = static_cast<size_t>(num_pages) * n_kv_heads * kKvPageSize * d;
    DeviceBuffer<__nv_bfloat16> k_pool(pool), v_pool(pool);
    k_pool.fill_bytes(0xFF);
    v_pool.fill_bytes(0xFF);
    RopeAppendArgs a;
    a.q = d_qkv.data();
    a.k = d_qkv.data() + n_heads * d;
    a.v = d_qkv.data() + (n_heads + n_kv_heads) * d;
    a.q_stride = a.k_stride = a.v_stride = qkv_stride;
    a.n_tokens = n;
    a.n_heads = n_heads;
    a.n_kv_heads = n_kv_heads;
    a.head_dim = d;
    a.positions = d_pos.data();
    a.token_seq = d_seq.data();
    a.page_table = d_table.data();
    a.page_table_stride = stride_pages;
    a.k_pool = k_pool.data();
    a.v_pool = v_pool.data();
    a.inv_freq = d_inv.data();
    a.interleaved = rc.style == model::RopeStyle::Interleaved;
    rope_append_kv(a, nullptr);
    const std::vector<float> q_out = test::to_float(d_qkv.download());
    const std::vector<float> k_cache = test::to_float(k_pool.download());
    const std::vector<float> v_cache = test::to_float(v_pool.download());

    size_t written = 0;
    for (int t = 0; t < n; ++t) {
      std::vector<float> row(qkv.begin() + t * qkv_stride, qkv.begin() + (t + 1) * qkv_stride);
      backend::cpu::apply_rope(row.data(), 1, n_heads + n_kv_heads, d, positions[t], inv_freq.data(), rc.style);
      const int page = table[static_cast<size_t>(token_seq[t]) * stride_pages + positions[t] / kKvPageSize];
      const int slot = positions[t] % kKvPageSize;
      for (int h = 0; h < n_heads + 2 * n_kv_heads; ++h) {
        for (int i = 0; i < d; ++i) {
          const size_t src = static_cast<size_t>(h) * d + i;
          float got = 0.0f;
          if (h < n_heads) {
            got = q_out[t * qkv_stride + src];
          } else {
            const int kvh = (h - n_heads) % n_kv_heads;
            const size_t at = ((static_cast<size_t>(page) * n_kv_heads + kvh) * kKvPageSize + slot) * d + i;
            got = h < n_heads + n_kv_heads ? k_cache[at] : v_cache[at];
            ++written;
          }
          const float want = h < n_heads + n_kv_heads ? row[src] : qkv[t * qkv_stride + src];
          // The pair partner bounds the error of a rotated element.
          const int half = d / 2;
          const int pair = rc.style == model::RopeStyle::Interleaved ? (i ^ 1) : (i < half ? i + half : i - half);
          const float partner = qkv[t * qkv_stride + static_cast<size_t>(h) * d + pair];
          const float bound = 4e-3f * (std::fabs(qkv[t * qkv_stride + src]) + std::fabs(partner)) + 1e-6f;
          ASSERT_LE(std::fabs(got - want), bound) << "d=" << d << " token " << t << " head " << h << " dim " << i;
        }
      }
    }
    size_t finite = 0;
    for (size_t i = 0; i < pool; ++i) finite += !std::isnan(k_cache[i]) + !std::isnan(v_cache[i]);
    EXPECT_EQ(finite, written) << "rope_append_kv wrote outside its slots";

    // The same rotation into a separate, contiguous q buffer (the fused-QKV path): equal bits, and
    // the fused input left as it was.
    auto d_fresh = to_device(test::to_bf16(qkv));
    DeviceBuffer<__nv_bfloat16> q_apart(static_cast<size_t>(n) * n_heads * d);
    a.q = d_fresh.data();
    a.k = d_fresh.data() + n_heads * d;
    a.v = d_fresh.data() + (n_heads + n_kv_heads) * d;
    a.q_out = q_apart.data();
    rope_append_kv(a, nullptr);
    const std::vector<float> apart = test::to_float(q_apart.download());
    EXPECT_EQ(test::to_float(d_fresh.download()), test::to_float(test::to_bf16(qkv))) << "q_out set: input changed";
    for (int t = 0; t < n; ++t) {
      for (int i = 0; i < n_heads * d; ++i) {
        ASSERT_EQ(apart[static_cast<size_t>(t) * n_heads * d + static_cast<size_t>(i)],
                  q_out[static_cast<size_t>(t) * qkv_stride + static_cast<size_t>(i)])
            << "token " << t << " element " << i;
      }
    }

    // Into rows instead of the pools (the FP8 cache's path): the very bits the pools got.
    auto d_rows_in = to_device(test::to_bf16(qkv));
    DeviceBuffer<__nv_bfloat16> k_rows(static_cast<size_t>(n) * n_kv_heads * d), v_rows(k_rows.size());
    a.q = d_rows_in.data();
    a.k = d_rows_in.data() + n_heads * d;
    a.v = d_rows_in.data() + (n_heads + n_kv_heads) * d;
    a.q_out = nullptr;
    a.page_table = nullptr;
    a.k_rows = k_rows.data();
    a.v_rows = v_rows.data();
    rope_append_kv(a, nullptr);
    const std::vector<float> k_got = test::to_float(k_rows.download());
    const std::vector<float> v_got = test::to_float(v_rows.download());
    for (int t = 0; t < n; ++t) {
      const int page = table[static_cast<size_t>(token_seq[t]) * stride_pages + positions[t] / kKvPageSize];
      const int slot = positions[t] % kKvPageSize;
      for (int h = 0; h < n_kv_heads; ++h) {
        for (int i = 0; i < d; ++i) {
          const size_t at = ((static_cast<size_t>(page) * n_kv_heads + h) * kKvPageSize + slot) * d + i;
          const size_t row = (static_cast<size_t>(t) * n_kv_heads + h) * d + i;
          ASSERT_EQ(k_got[row], k_cache[at]) << "k row, token " << t << " head " << h << " dim " << i;
          ASSERT_EQ(v_got[row], v_cache[at]) << "v row, token " << t << " head " << h << " dim " << i;
        }
      }
    }
    a.k_rows = a.v_rows = nullptr;
  }
}

TEST(Elementwise, SwigluMatchesCpuOnFusedRows) {
  std::mt19937_64 rng(test::fresh_seed("swiglu"));
  const int rows = 3, dim = 1001;
  const std::vector<float> gate_up = test::random_bf16_values(static_cast<size_t>(rows) * 2 * dim, rng, 2.0f);
  std::vector<float> want(static_cast<size_t>(rows) * dim);
  for (int r = 0; r < rows; ++r) {
    std::vector<float> g(gate_up.begin() + r * 2 * dim, gate_up.begin() + r * 2 * dim + dim);
    backend::cpu::swiglu(g.data(), gate_up.data() + r * 2 * dim + dim, dim);
    std::copy(g.begin(), g.end(), want.begin() + r * dim);
  }
  auto d_in = to_device(test::to_bf16(gate_up));
  DeviceBuffer<__nv_bfloat16> d_out(want.size());
  d_out.fill_bytes(0xFF);
  swiglu(d_in.data(), d_in.data() + dim, 2 * dim, d_out.data(), rows, dim, nullptr);
  expect_close(test::to_float(d_out.download()), want, 4e-3, "swiglu");
}

TEST(Elementwise, EmbeddingResidualAndConversionAreExact) {
  std::mt19937_64 rng(test::fresh_seed("embedding/residual/convert"));
  const int vocab = 50, dim = 72;
  const std::vector<float> table = test::random_bf16_values(static_cast<size_t>(vocab) * dim, rng);
  const std::vector<int32_t> tokens = {3, 49, 0, -1, 50, 17};
  auto d_table = to_device(test::to_bf16(table));
  auto d_tokens = to_device(tokens);
  DeviceBuffer<float> d_rows(tokens.size() * dim);
  d_rows.fill_bytes(0xFF);
  embedding_gather(d_tokens.data(), d_table.data(), d_rows.data(), static_cast<int>(tokens.size()), dim, vocab,
                   nullptr);
  const std::vector<float> rows = d_rows.download();
  for (size_t t = 0; t < tokens.size(); ++t) {
    const bool valid = tokens[t] >= 0 && tokens[t] < vocab;
    for (int i = 0; i < dim; ++i) {
      const float want = valid ? table[static_cast<size_t>(tokens[t]) * dim + i] : 0.0f;
      ASSERT_EQ(rows[t * dim + i], want) << "token " << t << " dim " << i;
    }
  }

  const std::vector<float> residual = test::random_bf16_values(1003, rng);
  std::vector<float> x(1003);
  std::normal_distribution<float> normal;
  for (float& v : x) v = normal(rng);
  auto d_res = to_device(residual);
  auto d_x = to_device(test::to_bf16(test::random_bf16_values(1003, rng)));
  const std::vector<float> xb = test::to_float(d_x.download());
  residual_add(d_res.data(), d_x.data(), 1003, nullptr);
  std::vector<float> want = residual;
  backend::cpu::add_in_place(want.data(), xb.data(), 1003);
  EXPECT_EQ(d_res.download(), want);

  auto d_f32 = to_device(x);
  DeviceBuffer<__nv_bfloat16> d_b(x.size());
  d_b.fill_bytes(0xFF);
  f32_to_bf16(d_f32.data(), d_b.data(), static_cast<int64_t>(x.size()), nullptr);
  const std::vector<float> converted = test::to_float(d_b.download());
  for (size_t i = 0; i < x.size(); ++i) ASSERT_EQ(converted[i], test::round_bf16(x[i])) << i;
}

}  // namespace
}  // namespace deltainfer::cuda
