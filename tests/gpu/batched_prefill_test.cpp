// CudaAttention::prefill_batch (the chunks of several sequences in as few launches as the method
// allows: sliding[+Δ] through the varlen kernel with Δ fused, Δ's strided rows of every chunk in
// one compacted varlen launch, the dense tails in one) equals CudaAttention::prefill called once
// per sequence through the single-sequence kernels, bit for bit: both run the same kernel code
// on the same rows, so any difference is a wrong offset, position, page row or dense row.
// Every prefill method and Δ variant; chunks of 1 .. 3000 rows that start mid-sequence (not on
// page boundaries where γ allows), shuffled pages of one pool, NaN in every slot past a
// sequence's keys and in spare pages, packed rows in shuffled order with a NaN spare row before
// each chunk (it must stay untouched), more chunks than one launch's table.
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "attention/attention_config.h"
#include "backend/cuda/cuda_attention.h"
#include "gpu_test_support.h"
#include "model/model_config.h"
#include "reference_sparse_prefill.h"
#include "varlen_packing.h"

namespace deltainfer::cuda {
namespace {

using test::DeviceVec;

struct ChunkShape {
  int n_q;
  int first_pos;
  int prompt_extra;  // the whole prefill ends prompt_extra rows after this chunk
};

struct BatchCase {
  std::string name;
  const char* prefill;  // dense, sliding[+delta], vslash[+delta]
  int gamma;
  attention::DeltaVariant variant;
  int dense_tail;
  int window, sink;
  int n_heads, n_kv_heads, head_dim;
  std::vector<ChunkShape> chunks;
};

attention::AttentionConfig config_of(const BatchCase& c) {
  attention::AttentionConfig config;
  EXPECT_TRUE(attention::parse_prefill_method(c.prefill, config.prefill)) << c.prefill;
  config.prefill.gamma = c.gamma;
  config.prefill.variant = c.variant;
  config.prefill.dense_tail = c.dense_tail;
  config.prefill.block = 64;
  config.prefill.vertical = 96;
  config.prefill.slash = 200;
  config.prefill.estimate_queries = 64;
  config.window = c.window;
  config.sink = c.sink;
  return config;
}

model::ModelConfig model_of(const BatchCase& c) {
  model::ModelConfig m;
  m.name = "batched-prefill-shape";
  m.n_layers = 2;
  m.n_heads = c.n_heads;
  m.n_kv_heads = c.n_kv_heads;
  m.head_dim = c.head_dim;
  m.d_model = c.n_heads * c.head_dim;
  m.ffn_dim = 4 * m.d_model;
  m.vocab_size = 1000;
  return m;
}

int pages_of(int keys) { return (keys + kKvPageSize - 1) / kKvPageSize; }

// One pool for every sequence: sequence s owns page-table row s, its pages shuffled among all;
// every slot no sequence holds a key in is NaN.
struct SharedPool {
  int stride = 1, num_pages = 0;
  std::vector<int32_t> tables;
  std::vector<float> k, v;
};

SharedPool make_pool(const BatchCase& c, const std::vector<VarlenChunk>& chunks, std::mt19937_64& rng) {
  SharedPool pool;
  int total = 0;
  for (const VarlenChunk& ch : chunks) {
    pool.stride = std::max(pool.stride, pages_of(ch.kv_len) + 1);
    total += pages_of(ch.kv_len);
  }
  pool.num_pages = total + 3;
  std::vector<int32_t> physical(static_cast<size_t>(pool.num_pages));
  std::iota(physical.begin(), physical.end(), 0);
  std::shuffle(physical.begin(), physical.end(), rng);
  pool.tables.assign(chunks.size() * static_cast<size_t>(pool.stride), -1);
  const size_t head_elems = static_cast<size_t>(kKvPageSize) * static_cast<size_t>(c.head_dim);
  pool.k.assign(static_cast<size_t>(pool.num_pages) * static_cast<size_t>(c.n_kv_heads) * head_elems, NAN);
  pool.v.assign(pool.k.size(), NAN);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  size_t next = 0;
  for (size_t s = 0; s < chunks.size(); ++s) {
    for (int p = 0; p < pages_of(chunks[s].kv_len); ++p) {
      const int32_t page = physical[next++];
      pool.tables[s * static_cast<size_t>(pool.stride) + static_cast<size_t>(p)] = page;
      const int keys = std::min(kKvPageSize, chunks[s].kv_len - p * kKvPageSize);
      for (int h = 0; h < c.n_kv_heads; ++h) {
        const size_t base = (static_cast<size_t>(page) * static_cast<size_t>(c.n_kv_heads) + static_cast<size_t>(h)) * head_elems;
        for (size_t e = 0; e < static_cast<size_t>(keys) * static_cast<size_t>(c.head_dim); ++e) {
          pool.k[base + e] = test::round_bf16(normal(rng));
          pool.v[base + e] = test::round_bf16(normal(rng));
        }
      }
    }
  }
  return pool;
}

// The chunks in a shuffled packing order, one spare row before each; chunk s is sequence s.
std::vector<VarlenChunk> make_chunks(const BatchCase& c, std::mt19937_64& rng, int& rows) {
  std::vector<VarlenChunk> chunks;
  for (size_t s = 0; s < c.chunks.size(); ++s) {
    const ChunkShape& shape = c.chunks[s];
    chunks.push_back({0, shape.n_q, shape.first_pos, shape.first_pos + shape.n_q, static_cast<int>(s), 0});
  }
  rows = test::pack_shuffled(chunks, rng);
  return chunks;
}

class BatchedPrefillTest : public ::testing::TestWithParam<BatchCase> {};

TEST_P(BatchedPrefillTest, EqualsOneCallPerSequence) {
  const BatchCase& c = GetParam();
  std::mt19937_64 rng(test::fresh_seed("batched prefill " + c.name));
  int rows = 0;
  const std::vector<VarlenChunk> chunks = make_chunks(c, rng, rows);
  std::vector<int64_t> prompt_ends;
  int capacity = 0;
  for (size_t s = 0; s < chunks.size(); ++s) {
    prompt_ends.push_back(chunks[s].kv_len + c.chunks[s].prompt_extra);
    capacity = std::max(capacity, static_cast<int>(prompt_ends.back()));
  }
  const SharedPool pool = make_pool(c, chunks, rng);
  const size_t row_elems = static_cast<size_t>(c.n_heads) * static_cast<size_t>(c.head_dim);
  const std::vector<float> q = test::random_bf16_values(static_cast<size_t>(rows) * row_elems, rng, 1.5f);

  DeviceVec<__nv_bfloat16> d_q(test::to_bf16(q)), d_k(test::to_bf16(pool.k)), d_v(test::to_bf16(pool.v));
  DeviceVec<int32_t> d_tables(pool.tables);
  DeviceVec<__nv_bfloat16> d_batched(static_cast<size_t>(rows) * row_elems), d_single(d_batched.size);
  ASSERT_TRUE(d_q.ptr && d_k.ptr && d_v.ptr && d_tables.ptr && d_batched.ptr && d_single.ptr);
  d_batched.poison();
  d_single.poison();

  // A step of `rows` rows in chunks.size() chunks, as the transformer plans a method's workspaces.
  const int max_batch = static_cast<int>(chunks.size());
  CudaAttention attention(config_of(c), model_of(c), capacity, rows - max_batch + 1, max_batch);

  VarlenPrefillArgs batch;
  batch.q = d_q.ptr;
  batch.out = d_batched.ptr;
  batch.kv = bf16_batch_kv(d_k.ptr, d_v.ptr, pool.num_pages, c.n_kv_heads, c.head_dim, d_tables.ptr, pool.stride,
                           static_cast<int>(chunks.size()));  // sequence s owns row s
  attention.prefill_batch(0, batch, chunks, prompt_ends, nullptr);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);

  for (size_t s = 0; s < chunks.size(); ++s) {
    const VarlenChunk& ch = chunks[s];
    const PagedKv kv = bf16_sequence_kv(d_k.ptr, d_v.ptr, pool.num_pages, c.n_kv_heads, c.head_dim,
                                        d_tables.ptr + static_cast<size_t>(ch.page_row) * static_cast<size_t>(pool.stride),
                                        ch.kv_len);
    attention.prefill(0, d_q.ptr + static_cast<size_t>(ch.q_row) * row_elems, ch.n_q, ch.first_pos, prompt_ends[s], kv,
                      d_single.ptr + static_cast<size_t>(ch.q_row) * row_elems, nullptr);
  }
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);

  const std::vector<float> batched = test::to_float(d_batched.download());
  const std::vector<float> single = test::to_float(d_single.download());
  std::vector<int> owner(static_cast<size_t>(rows), -1);
  for (size_t s = 0; s < chunks.size(); ++s) {
    for (int r = 0; r < chunks[s].n_q; ++r) owner[static_cast<size_t>(chunks[s].q_row + r)] = static_cast<int>(s);
  }
  size_t differ = 0, not_finite = 0, touched = 0;
  int first_bad_chunk = -1;
  for (size_t row = 0; row < owner.size(); ++row) {
    for (size_t e = 0; e < row_elems; ++e) {
      const size_t i = row * row_elems + e;
      if (owner[row] < 0) {
        touched += std::isnan(batched[i]) ? 0 : 1;
        continue;
      }
      not_finite += std::isfinite(single[i]) ? 0 : 1;
      if (batched[i] != single[i]) {  // NaN != NaN: a row the batch left unwritten counts too
        ++differ;
        if (first_bad_chunk < 0) first_bad_chunk = owner[row];
      }
    }
  }
  EXPECT_EQ(not_finite, 0u) << "the per-sequence calls left rows unwritten";
  EXPECT_EQ(differ, 0u) << "outputs that differ from one call per sequence; first in chunk " << first_bad_chunk;
  EXPECT_EQ(touched, 0u) << "elements written in rows that belong to no chunk";
}

// γ 16 or 32 lets chunks start off page boundaries; γ 64 starts them on one.
std::vector<ChunkShape> mixed_chunks(int gamma) {
  return {{1, 0, 0},           {3, gamma, 0},        {64, 0, 0},        {127, 3 * gamma, 0}, {300, 7 * gamma, 0},
          {700, 2 * gamma, 1000}, {3000, 0, 0},      {1, 255 * gamma, 0}, {129, 44 * gamma, 50}, {1000, 64 * gamma, 60}};
}

std::vector<ChunkShape> any_start_chunks() {  // no Δ: chunks start anywhere
  return {{1, 0, 0}, {3, 61, 0}, {127, 1, 0}, {300, 700, 0}, {2600, 33, 0}, {1, 4095, 0}, {65, 190, 7}};
}

std::vector<ChunkShape> many_chunks(int gamma) {  // more than one launch's chunk table
  std::vector<ChunkShape> s;
  for (int i = 0; i < 70; ++i) s.push_back({1 + (i * 37) % 150, ((i * 53) % 20) * gamma, (i % 3) * 40});
  return s;
}

using attention::DeltaVariant;

INSTANTIATE_TEST_SUITE_P(
    Methods, BatchedPrefillTest,
    ::testing::Values(
        BatchCase{"sliding_delta_g64_d128", "sliding+delta", 64, DeltaVariant::Delta, 128, 256, 64, 8, 2, 128, mixed_chunks(64)},
        BatchCase{"sliding_delta_g16_d64", "sliding+delta", 16, DeltaVariant::Delta, 40, 100, 10, 6, 2, 64, mixed_chunks(16)},
        BatchCase{"sliding_delta_g32_no_tail", "sliding+delta", 32, DeltaVariant::Delta, 0, 300, 64, 8, 8, 128, mixed_chunks(32)},
        BatchCase{"sliding_recompute_g32", "sliding+delta", 32, DeltaVariant::Recompute, 128, 256, 64, 8, 2, 128, mixed_chunks(32)},
        BatchCase{"sliding_interpolate_g16", "sliding+delta", 16, DeltaVariant::Interpolate, 128, 256, 64, 8, 2, 64, mixed_chunks(16)},
        BatchCase{"sliding_delta_g128_unfused", "sliding+delta", 128, DeltaVariant::Delta, 128, 256, 64, 8, 2, 128, mixed_chunks(128)},
        BatchCase{"sliding_delta_70_chunks", "sliding+delta", 16, DeltaVariant::Delta, 128, 128, 16, 8, 2, 128, many_chunks(16)},
        BatchCase{"sliding", "sliding", 64, DeltaVariant::Delta, 128, 256, 64, 8, 2, 128, any_start_chunks()},
        BatchCase{"dense", "dense", 64, DeltaVariant::Delta, 128, 256, 64, 8, 2, 128, any_start_chunks()},
        BatchCase{"vslash_delta_g64", "vslash+delta", 64, DeltaVariant::Delta, 128, 256, 64, 8, 2, 128, mixed_chunks(64)},
        BatchCase{"vslash", "vslash", 64, DeltaVariant::Delta, 128, 256, 64, 4, 4, 64, any_start_chunks()}),
    [](const ::testing::TestParamInfo<BatchCase>& test_case) { return test_case.param.name; });

}  // namespace
}  // namespace deltainfer::cuda
