// The FP8 paged KV append against its CPU twin (core/kv_fp8_page.h), bit for bit: codes and scales
// of every pool page after a prefill chunk crossing pages, decode steps of one token, a chunk of
// large-amax rows (rescales pages already holding rows) and rows with NaN/inf, in pools poisoned
// with NaN codes and scales (spare pages and unwritten rows must stay poisoned). Also the host
// e4m3 codec against the hardware's conversion. Tolerance: none (the same arithmetic, exactly).
#include <cuda_fp8.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "backend/cuda/decode_attention.h"
#include "backend/cuda/device_buffer.h"
#include "backend/cuda/kv_fp8_append.h"
#include "core/fp8_e4m3.h"
#include "core/kv_fp8_page.h"
#include "gpu_test_support.h"

namespace deltainfer::cuda {
namespace {

__global__ void hardware_e4m3_kernel(const float* in, uint8_t* out, int n) {
  const int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (i < n) out[i] = static_cast<uint8_t>(__nv_cvt_float_to_fp8(in[i], __NV_SATFINITE, __NV_E4M3));
}

TEST(KvFp8Append, HostCodecMatchesTheHardwareConversionOnFiniteValues) {
  std::mt19937_64 rng(test::fresh_seed("KvFp8Append codec"));
  std::uniform_real_distribution<float> exponent(-14.0f, 12.0f);
  std::vector<float> values;
  for (int i = 0; i < 200000; ++i) {
    const float magnitude = std::exp2(exponent(rng));
    values.push_back(i % 2 == 0 ? magnitude : -magnitude);
  }
  for (int code = 0; code < 256; ++code) {  // every value, and the midpoints above it (the ties)
    const float value = fp8_e4m3_decode(static_cast<uint8_t>(code));
    const float next = fp8_e4m3_decode(static_cast<uint8_t>(code + 1));
    if (std::isfinite(value)) values.push_back(value);
    if (std::isfinite(value) && std::isfinite(next) && (code & 0x7F) != 0x7E) values.push_back((value + next) / 2);
  }
  for (float special : {0.0f, -0.0f, 464.0f, 1e30f, -1e30f, 1e-40f}) values.push_back(special);
  DeviceBuffer<float> d_in = to_device(values);
  DeviceBuffer<uint8_t> d_out(values.size());
  const int n = static_cast<int>(values.size());
  hardware_e4m3_kernel<<<(n + 255) / 256, 256>>>(d_in.data(), d_out.data(), n);
  CUDA_CHECK(cudaDeviceSynchronize());
  const std::vector<uint8_t> hardware = d_out.download();
  for (size_t i = 0; i < values.size(); ++i) {
    ASSERT_EQ(int{fp8_e4m3_encode(values[i])}, int{hardware[i]}) << "value " << values[i];
  }
}

struct Pools {
  std::vector<uint8_t> k_codes, v_codes;
  std::vector<float> k_scales, v_scales;
};

struct AppendCase {
  int n_kv_heads = 2;
  int head_dim = 64;
  int num_pages = 9;
  std::vector<int32_t> page_table;  // 2 sequences of 4 pages; pool page 8 is spare
  int stride = 4;
};

// One step: `entries` (first_row, seq, first_position, count) over rows [tokens][heads][dim].
void append_on_both(const AppendCase& c, const std::vector<KvPageRun>& entries, const std::vector<float>& rows,
                    Pools& host, DeviceBuffer<uint8_t>& k_codes, DeviceBuffer<uint8_t>& v_codes,
                    DeviceBuffer<float>& k_scales, DeviceBuffer<float>& v_scales, const DeviceBuffer<int32_t>& table) {
  const size_t token_values = static_cast<size_t>(c.n_kv_heads) * c.head_dim;
  std::vector<float> k_rows(rows.size()), v_rows(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    k_rows[i] = rows[i];
    v_rows[i] = test::round_bf16(rows[i] * -0.5f);  // V differs from K
  }
  const std::vector<KvPageRun> runs = kv_page_runs(entries);
  DeviceBuffer<__nv_bfloat16> d_k = to_device(test::to_bf16(k_rows));
  DeviceBuffer<__nv_bfloat16> d_v = to_device(test::to_bf16(v_rows));
  DeviceBuffer<KvPageRun> d_runs = to_device(runs);
  Fp8AppendArgs args;
  args.k = d_k.data();
  args.v = d_v.data();
  args.runs = d_runs.data();
  args.n_runs = static_cast<int>(runs.size());
  args.page_table = table.data();
  args.page_table_stride = c.stride;
  args.n_kv_heads = c.n_kv_heads;
  args.head_dim = c.head_dim;
  args.k_codes = k_codes.data();
  args.v_codes = v_codes.data();
  args.k_scales = k_scales.data();
  args.v_scales = v_scales.data();
  fp8_append_kv(args, nullptr);
  CUDA_CHECK(cudaDeviceSynchronize());

  for (const KvPageRun& e : entries) {
    const int32_t* seq_table = c.page_table.data() + static_cast<size_t>(e.seq) * c.stride;
    const Fp8Pool k_pool{host.k_codes.data(), host.k_scales.data(), c.n_kv_heads, c.head_dim};
    const Fp8Pool v_pool{host.v_codes.data(), host.v_scales.data(), c.n_kv_heads, c.head_dim};
    fp8_append_positions(k_pool, seq_table, e.first_position, e.count, k_rows.data() + e.first_row * token_values);
    fp8_append_positions(v_pool, seq_table, e.first_position, e.count, v_rows.data() + e.first_row * token_values);
  }
}

std::vector<float> step_rows(std::mt19937_64& rng, int tokens, const AppendCase& c, float magnitude) {
  return test::random_bf16_values(static_cast<size_t>(tokens) * c.n_kv_heads * c.head_dim, rng, magnitude);
}

template <typename T>
void expect_same_bits(const std::vector<T>& got, const std::vector<T>& want, const char* what) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_EQ(std::memcmp(&got[i], &want[i], sizeof(T)), 0) << what << " element " << i;
  }
}

void run_case(int head_dim) {
  AppendCase c;
  c.head_dim = head_dim;
  c.page_table = {5, 0, 7, 2, /* seq 1 */ 3, 6, 1, 4};
  std::mt19937_64 rng(test::fresh_seed("KvFp8Append head_dim " + std::to_string(head_dim)));
  const size_t pool_values = static_cast<size_t>(c.num_pages) * c.n_kv_heads * kKvPageSize * c.head_dim;
  const size_t scale_count = static_cast<size_t>(c.num_pages) * c.n_kv_heads;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  Pools host{std::vector<uint8_t>(pool_values, kFp8E4m3Nan), std::vector<uint8_t>(pool_values, kFp8E4m3Nan),
             std::vector<float>(scale_count, nan), std::vector<float>(scale_count, nan)};
  DeviceBuffer<uint8_t> k_codes = to_device(host.k_codes), v_codes = to_device(host.v_codes);
  DeviceBuffer<float> k_scales = to_device(host.k_scales), v_scales = to_device(host.v_scales);
  DeviceBuffer<int32_t> table = to_device(c.page_table);

  // Prefill chunks: 100 tokens of sequence 0 (crosses a page, ends mid-page), 37 of sequence 1.
  append_on_both(c, {{0, 0, 0, 100}, {100, 1, 0, 37}}, step_rows(rng, 137, c, 1.0f), host, k_codes, v_codes,
                 k_scales, v_scales, table);
  // Decode steps: one token each, the second sequence's rows growing (rescales its page).
  int64_t lengths[2] = {100, 37};
  for (int step = 0; step < 30; ++step) {
    std::vector<float> rows = step_rows(rng, 2, c, 1.0f);
    for (size_t i = rows.size() / 2; i < rows.size(); ++i) rows[i] = test::round_bf16(rows[i] * std::pow(1.4f, step));
    append_on_both(c, {{0, 0, static_cast<int32_t>(lengths[0]), 1}, {1, 1, static_cast<int32_t>(lengths[1]), 1}},
                   rows, host, k_codes, v_codes, k_scales, v_scales, table);
    ++lengths[0];
    ++lengths[1];
  }
  // A chunk of large-amax rows with NaN and inf, into pages that already hold rows.
  std::vector<float> wild = step_rows(rng, 50, c, 3000.0f);
  wild[3] = nan;
  wild[static_cast<size_t>(head_dim) + 1] = std::numeric_limits<float>::infinity();
  wild[wild.size() - 2] = -std::numeric_limits<float>::infinity();
  append_on_both(c, {{0, 0, static_cast<int32_t>(lengths[0]), 20}, {20, 1, static_cast<int32_t>(lengths[1]), 30}},
                 wild, host, k_codes, v_codes, k_scales, v_scales, table);

  expect_same_bits(k_codes.download(), host.k_codes, "K codes");
  expect_same_bits(v_codes.download(), host.v_codes, "V codes");
  expect_same_bits(k_scales.download(), host.k_scales, "K scales");
  expect_same_bits(v_scales.download(), host.v_scales, "V scales");
  // The spare pool page 8 and the tail of the last pages were never written: still poisoned.
  EXPECT_TRUE(std::isnan(host.k_scales[8 * static_cast<size_t>(c.n_kv_heads)]));
  EXPECT_EQ(host.k_codes[pool_values - 1], kFp8E4m3Nan);
}

TEST(KvFp8Append, MatchesTheCpuTwinBitForBitHeadDim64) { run_case(64); }
TEST(KvFp8Append, MatchesTheCpuTwinBitForBitHeadDim128) { run_case(128); }

TEST(KvFp8Append, RunsAreSplitAtPageBoundaries) {
  const std::vector<KvPageRun> runs = kv_page_runs({{0, 0, 60, 70}, {70, 1, 128, 1}});
  ASSERT_EQ(runs.size(), 4u);
  EXPECT_EQ(runs[0].count, 4);
  EXPECT_EQ(runs[1].first_row, 4);
  EXPECT_EQ(runs[1].first_position, 64);
  EXPECT_EQ(runs[1].count, 64);
  EXPECT_EQ(runs[2].first_position, 128);
  EXPECT_EQ(runs[2].count, 2);
  EXPECT_EQ(runs[3].first_row, 70);
  EXPECT_EQ(runs[3].seq, 1);
}

}  // namespace
}  // namespace deltainfer::cuda
