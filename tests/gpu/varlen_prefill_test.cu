// Varlen prefill: the chunks of several sequences in one launch over one shared page pool, each
// causal (or sliding window + sink) over its own pages, against an f64 reference, and equal
// bit for bit to launching each chunk alone with the single-sequence kernels. Sequences have
// shuffled pages of one pool, lengths that are not multiples of the tiles (1 .. 2600 rows),
// chunks that start mid-sequence, NaN in every slot past a sequence's kv_len and in the spare
// pages, and rows of the packed output that belong to no chunk (they must stay untouched).
// Compacted cases give each chunk's rows positions position_step apart through q_pos (Δ's
// strided rows of several chunks in one launch).
// Tolerance as prefill_attention_test: bf16 output, rel L2 < 1e-2, max abs < 4e-2 per chunk.
// Every case runs on the v3 kernel (kSm90, the fallback) and on the FA3-style one (kSm90Ws, the
// default, suffix _sm90ws, whose single launches are then its own single-sequence modes), waiting
// through the stream watchdog so that a kernel stuck in a barrier fails its case instead of
// blocking the suite.
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

#include "backend/cuda/prefill_attention.h"
#include "backend/cuda/sparse_prefill.h"
#include "core/error.h"
#include "gpu_test_support.h"
#include "reference_sparse_prefill.h"
#include "stream_watchdog.h"
#include "varlen_packing.h"

namespace deltainfer::cuda {
namespace {

using test::DeviceVec;

struct SequenceShape {
  int n_q;
  int first_pos;
  int extra_keys;  // kv_len = first_pos + n_q + extra_keys
};

struct VarlenCase {
  std::string name;
  std::vector<SequenceShape> sequences;
  int n_heads;
  int n_kv_heads;
  int head_dim;
  int window;  // 0: dense
  int sink;
  int position_step = 1;  // > 1: compacted rows (q_pos), row r of a chunk at first_pos + r * step
  PrefillKernel kernel = PrefillKernel::kSm90;
};

int position_of(const VarlenCase& c, const VarlenChunk& ch, int r) { return ch.first_pos + r * c.position_step; }

// A pool shared by every sequence: sequence s owns page-table row s (stride = the longest
// sequence's pages + 1); all other slots hold NaN.
struct SharedPool {
  int head_dim, n_kv_heads, stride, num_pages;
  std::vector<int32_t> tables;
  std::vector<float> k, v;

  size_t offset(int seq, int key, int kv_head) const {
    const size_t page = static_cast<size_t>(tables[static_cast<size_t>(seq * stride + key / kKvPageSize)]);
    return ((page * n_kv_heads + static_cast<size_t>(kv_head)) * kKvPageSize + key % kKvPageSize) *
           static_cast<size_t>(head_dim);
  }
};

SharedPool make_pool(const VarlenCase& c, const std::vector<VarlenChunk>& chunks, std::mt19937_64& rng) {
  SharedPool pool{c.head_dim, c.n_kv_heads, 1, 0, {}, {}, {}};
  int total = 0;
  for (const VarlenChunk& ch : chunks) {
    const int pages = (ch.kv_len + kKvPageSize - 1) / kKvPageSize;
    pool.stride = std::max(pool.stride, pages + 1);
    total += pages;
  }
  pool.num_pages = total + 5;  // spare pages nobody owns
  std::vector<int32_t> physical(static_cast<size_t>(pool.num_pages));
  std::iota(physical.begin(), physical.end(), 0);
  std::shuffle(physical.begin(), physical.end(), rng);
  pool.tables.assign(chunks.size() * static_cast<size_t>(pool.stride), -1);
  size_t next = 0;
  for (size_t s = 0; s < chunks.size(); ++s) {
    const int pages = (chunks[s].kv_len + kKvPageSize - 1) / kKvPageSize;
    for (int p = 0; p < pages; ++p) pool.tables[s * static_cast<size_t>(pool.stride) + static_cast<size_t>(p)] = physical[next++];
  }
  const size_t elems = static_cast<size_t>(pool.num_pages) * c.n_kv_heads * kKvPageSize * c.head_dim;
  pool.k.assign(elems, NAN);
  pool.v.assign(elems, NAN);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (size_t s = 0; s < chunks.size(); ++s) {
    for (int key = 0; key < chunks[s].kv_len; ++key) {
      for (int h = 0; h < c.n_kv_heads; ++h) {
        const size_t o = pool.offset(static_cast<int>(s), key, h);
        for (int e = 0; e < c.head_dim; ++e) {
          pool.k[o + static_cast<size_t>(e)] = test::round_bf16(normal(rng));
          pool.v[o + static_cast<size_t>(e)] = test::round_bf16(normal(rng));
        }
      }
    }
  }
  return pool;
}

// Packed rows: the chunks in a shuffled order with one spare row before each.
std::vector<VarlenChunk> make_chunks(const VarlenCase& c, std::mt19937_64& rng, int& rows) {
  std::vector<VarlenChunk> chunks;
  for (size_t s = 0; s < c.sequences.size(); ++s) {
    const SequenceShape& shape = c.sequences[s];
    const int span = shape.n_q > 0 ? (shape.n_q - 1) * c.position_step + 1 : 0;  // positions the rows cover
    chunks.push_back({0, shape.n_q, shape.first_pos, shape.first_pos + span + shape.extra_keys, static_cast<int>(s)});
  }
  rows = test::pack_shuffled(chunks, rng);
  return chunks;
}

void upload_bf16(DeviceVec<__nv_bfloat16>& dst, const std::vector<float>& src) { dst.assign(test::to_bf16(src)); }

class VarlenPrefillTest : public ::testing::TestWithParam<VarlenCase> {};

TEST_P(VarlenPrefillTest, MatchesReferenceAndSingleLaunches) {
  const VarlenCase& c = GetParam();
  std::mt19937_64 rng(test::fresh_seed("varlen prefill " + c.name));
  int rows = 0;
  const std::vector<VarlenChunk> chunks = make_chunks(c, rng, rows);
  const SharedPool pool = make_pool(c, chunks, rng);
  const size_t row_elems = static_cast<size_t>(c.n_heads) * c.head_dim;
  const std::vector<float> q = test::random_bf16_values(static_cast<size_t>(rows) * row_elems, rng, 1.5f);

  DeviceVec<__nv_bfloat16> d_q, d_k, d_v;
  upload_bf16(d_q, q);
  upload_bf16(d_k, pool.k);
  upload_bf16(d_v, pool.v);
  DeviceVec<int32_t> d_tables(pool.tables);
  DeviceVec<__nv_bfloat16> d_out(static_cast<size_t>(rows) * row_elems), d_single(d_out.size);
  DeviceVec<float> d_lse(static_cast<size_t>(rows) * c.n_heads), d_single_lse(d_lse.size);
  std::vector<int32_t> positions(static_cast<size_t>(rows), 0);  // rows of no chunk: 0
  for (const VarlenChunk& ch : chunks) {
    for (int r = 0; r < ch.n_q; ++r) positions[static_cast<size_t>(ch.q_row + r)] = position_of(c, ch, r);
  }
  DeviceVec<int32_t> d_positions(positions);
  ASSERT_TRUE(d_q.ptr && d_k.ptr && d_v.ptr && d_tables.ptr && d_out.ptr && d_single.ptr && d_lse.ptr &&
              d_positions.ptr);
  d_out.poison();
  d_single.poison();
  d_lse.poison();
  d_single_lse.poison();

  VarlenPrefillArgs args;
  args.q = d_q.ptr;
  args.out = d_out.ptr;
  args.lse = c.window > 0 ? nullptr : d_lse.ptr;
  args.n_heads = c.n_heads;
  args.softmax_scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  args.kv = bf16_batch_kv(d_k.ptr, d_v.ptr, pool.num_pages, c.n_kv_heads, c.head_dim, d_tables.ptr, pool.stride,
                          static_cast<int>(chunks.size()));  // sequence s owns row s
  args.window = c.window;
  args.sink = c.sink;
  args.q_pos = c.position_step > 1 ? d_positions.ptr : nullptr;
  varlen_prefill_attention(args, chunks, nullptr, c.kernel);
  ASSERT_EQ(cudaGetLastError(), cudaSuccess);
  ASSERT_EQ(test::sync_or_exit(nullptr, c.name + " (varlen)"), cudaSuccess);

  // The same chunks one launch each, through the single-sequence entry points.
  for (const VarlenChunk& ch : chunks) {
    if (ch.n_q == 0) continue;
    PrefillAttentionArgs one;
    one.q = d_q.ptr + static_cast<size_t>(ch.q_row) * row_elems;
    one.first_pos = ch.first_pos;
    one.n_q = ch.n_q;
    one.n_heads = c.n_heads;
    one.softmax_scale = args.softmax_scale;
    one.kv = bf16_sequence_kv(d_k.ptr, d_v.ptr, pool.num_pages, c.n_kv_heads, c.head_dim,
                              d_tables.ptr + static_cast<size_t>(ch.page_row) * pool.stride, ch.kv_len);
    one.out = d_single.ptr + static_cast<size_t>(ch.q_row) * row_elems;
    one.q_pos = args.q_pos != nullptr ? d_positions.ptr + ch.q_row : nullptr;
    if (c.window > 0) {
      sliding_prefill_attention(one, c.window, c.sink, nullptr, {}, c.kernel);
    } else {
      one.lse = d_single_lse.ptr + static_cast<size_t>(ch.q_row) * c.n_heads;
      prefill_attention(one, nullptr, c.kernel);
    }
  }
  ASSERT_EQ(cudaGetLastError(), cudaSuccess);
  ASSERT_EQ(test::sync_or_exit(nullptr, c.name + " (single launches)"), cudaSuccess);

  const std::vector<float> out = test::to_float(d_out.download());
  const std::vector<float> alone = test::to_float(d_single.download());
  const std::vector<float> lse = d_lse.download();
  const std::vector<float> lse_alone = d_single_lse.download();

  std::vector<bool> owned(static_cast<size_t>(rows), false);
  for (size_t s = 0; s < chunks.size(); ++s) {
    const VarlenChunk& ch = chunks[s];
    for (int r = 0; r < ch.n_q; ++r) owned[static_cast<size_t>(ch.q_row + r)] = true;
    std::vector<double> got, want;
    std::vector<double> ref(static_cast<size_t>(c.head_dim));
    for (const int r : test::checked_rows(ch.n_q)) {
      const int row = ch.q_row + r;
      const int pos = position_of(c, ch, r);
      for (int h = 0; h < c.n_heads; ++h) {
        const int kvh = h / (c.n_heads / c.n_kv_heads);
        const float* qi = &q[static_cast<size_t>(row) * row_elems + static_cast<size_t>(h) * c.head_dim];
        std::vector<double> scores;
        std::vector<int> keys;
        double mx = -INFINITY;
        for (int j = 0; j <= pos; ++j) {
          if (c.window > 0 && j >= c.sink && j <= pos - c.window) continue;
          const float* kj = &pool.k[pool.offset(static_cast<int>(s), j, kvh)];
          double dot = 0.0;
          for (int e = 0; e < c.head_dim; ++e) dot += static_cast<double>(qi[e]) * kj[e];
          scores.push_back(dot * args.softmax_scale);
          keys.push_back(j);
          mx = std::max(mx, scores.back());
        }
        std::fill(ref.begin(), ref.end(), 0.0);
        double sum = 0.0;
        for (size_t t = 0; t < keys.size(); ++t) {
          const double w = std::exp(scores[t] - mx);
          sum += w;
          const float* vj = &pool.v[pool.offset(static_cast<int>(s), keys[t], kvh)];
          for (int e = 0; e < c.head_dim; ++e) ref[static_cast<size_t>(e)] += w * vj[e];
        }
        const size_t o = static_cast<size_t>(row) * row_elems + static_cast<size_t>(h) * c.head_dim;
        for (int e = 0; e < c.head_dim; ++e) {
          got.push_back(out[o + static_cast<size_t>(e)]);
          want.push_back(ref[static_cast<size_t>(e)] / sum);
        }
        if (args.lse != nullptr) {
          const float l = lse[static_cast<size_t>(row) * c.n_heads + static_cast<size_t>(h)];
          EXPECT_NEAR(l, mx + std::log(sum), 5e-3) << "chunk " << s << " row " << r << " head " << h;
        }
      }
    }
    EXPECT_LT(test::relative_l2(got, want), 1e-2) << "chunk " << s << " (" << ch.n_q << " rows from " << ch.first_pos << ")";
    EXPECT_LT(test::max_abs_error(got, want), 4e-2) << "chunk " << s;
  }
  size_t differ = 0, touched = 0;
  for (int row = 0; row < rows; ++row) {
    for (size_t e = 0; e < row_elems; ++e) {
      const size_t i = static_cast<size_t>(row) * row_elems + e;
      if (owned[static_cast<size_t>(row)]) {
        differ += out[i] == alone[i] ? 0 : 1;  // NaN != NaN: an unwritten row counts too
      } else {
        touched += std::isnan(out[i]) ? 0 : 1;
      }
    }
    if (args.lse != nullptr && owned[static_cast<size_t>(row)]) {
      for (int h = 0; h < c.n_heads; ++h) {
        const size_t i = static_cast<size_t>(row) * c.n_heads + static_cast<size_t>(h);
        differ += lse[i] == lse_alone[i] ? 0 : 1;
      }
    }
  }
  EXPECT_EQ(differ, 0u) << "outputs that differ from launching each chunk alone";
  EXPECT_EQ(touched, 0u) << "elements written in rows that belong to no chunk";
}

std::vector<SequenceShape> mixed_sequences() {
  return {{1, 0, 0}, {3, 60, 0}, {64, 0, 0}, {127, 1, 0}, {128, 128, 0}, {129, 700, 5}, {700, 33, 0}, {2600, 0, 0},
          {0, 10, 0}, {1, 4095, 0}, {65, 190, 0}};
}

std::vector<SequenceShape> compacted_sequences() {  // rows spread over position_step times their count
  return {{1, 0, 0}, {3, 64, 0}, {64, 0, 0}, {127, 16, 0}, {200, 700, 5}, {0, 10, 0}, {1, 4095, 0}, {65, 192, 0}};
}

std::vector<SequenceShape> many_sequences() {  // more than one launch's chunk table
  std::vector<SequenceShape> s;
  for (int i = 0; i < 70; ++i) s.push_back({1 + (i * 37) % 150, (i * 53) % 300, i % 3});
  return s;
}

std::vector<VarlenCase> varlen_cases() {
  const std::vector<VarlenCase> shapes = {
      VarlenCase{"dense_d128_gqa4", mixed_sequences(), 8, 2, 128, 0, 0},
      VarlenCase{"dense_d64_mha", mixed_sequences(), 4, 4, 64, 0, 0},
      VarlenCase{"sliding_d128", mixed_sequences(), 8, 2, 128, 256, 64},
      VarlenCase{"sliding_d64_odd_window", mixed_sequences(), 6, 2, 64, 100, 10},
      VarlenCase{"dense_70_chunks", many_sequences(), 8, 2, 128, 0, 0},
      // Compacted rows, as Δ's strided rows of several chunks: q_pos.
      VarlenCase{"compacted_dense_d128_step16", compacted_sequences(), 8, 2, 128, 0, 0, 16},
      VarlenCase{"compacted_sliding_d64_step32", compacted_sequences(), 6, 2, 64, 300, 16, 32}};
  return test::with_sm90ws_copies(shapes);
}

INSTANTIATE_TEST_SUITE_P(Shapes, VarlenPrefillTest, ::testing::ValuesIn(varlen_cases()),
                         [](const ::testing::TestParamInfo<VarlenCase>& info) { return info.param.name; });

// A chunk's single-sequence view: its rows, and its sequence of the cache (sequence_kv) with the
// host-side length, no device lengths and everything else the batch's.
TEST(VarlenPrefill, ChunkArgsViewOneSequence) {
  std::vector<__nv_bfloat16> rows(16 * 4 * 64), pool(8);
  const std::vector<int32_t> tables(3 * 5), lens(3);
  VarlenPrefillArgs args;
  args.q = rows.data();
  args.out = rows.data();
  args.n_heads = 4;
  args.kv.k_pool = pool.data();
  args.kv.v_pool = pool.data() + 4;
  args.kv.num_pages = 9;
  args.kv.page_table = tables.data();
  args.kv.page_table_stride = 5;
  args.kv.kv_lens = lens.data();
  args.kv.batch = 3;
  args.kv.max_kv_len = 320;
  args.kv.n_kv_heads = 2;
  args.kv.head_dim = 64;
  const PrefillAttentionArgs one = varlen_chunk_args(args, VarlenChunk{3, 5, 100, 105, 2, 0});
  EXPECT_EQ(one.q, rows.data() + 3 * 4 * 64);
  EXPECT_EQ(one.out, rows.data() + 3 * 4 * 64);
  EXPECT_EQ(one.first_pos, 100);
  EXPECT_EQ(one.n_q, 5);
  EXPECT_EQ(one.kv.page_table, tables.data() + 2 * 5);
  EXPECT_EQ(one.kv.batch, 1);
  EXPECT_EQ(one.kv.max_kv_len, 105);
  EXPECT_EQ(one.kv.kv_lens, nullptr);
  EXPECT_EQ(one.kv.k_pool, args.kv.k_pool);
  EXPECT_EQ(one.kv.v_pool, args.kv.v_pool);
  EXPECT_EQ(one.kv.num_pages, 9);
  EXPECT_EQ(one.kv.page_table_stride, 5);
  EXPECT_EQ(one.kv.n_kv_heads, 2);
  EXPECT_EQ(one.kv.head_dim, 64);
}

// Host pointers throughout, every one set, so that only the check each case breaks refuses it
// (nothing launches).
TEST(VarlenPrefill, RefusesChunksOutsideTheirSequence) {
  const std::vector<__nv_bfloat16> pool(128 * 128 * 2);
  std::vector<__nv_bfloat16> rows(8 * 128);
  VarlenPrefillArgs args;
  int32_t table = 0;
  args.q = rows.data();
  args.out = rows.data();
  args.kv = bf16_batch_kv(pool.data(), pool.data(), 1, 2, 128, &table, 2, 1);  // one sequence of up to 128 keys
  args.n_heads = 8;
  args.softmax_scale = 0.1f;
  // Queries past kv_len, a sequence longer than the cache's bound, a page-table row it lacks.
  EXPECT_THROW(varlen_prefill_attention(args, {{0, 10, 60, 64, 0}}, nullptr), InputError);
  EXPECT_THROW(varlen_prefill_attention(args, {{0, 1, 0, 129, 0}}, nullptr), InputError);
  EXPECT_THROW(varlen_prefill_attention(args, {{0, 1, 0, 1, 1}}, nullptr), InputError);
  EXPECT_THROW(varlen_prefill_attention(args, {{0, 1, 0, 1, 1}}, nullptr, PrefillKernel::kSm90Ws), InputError);
  // The sm80 kernel has no varlen launch (a valid chunk, refused for the kernel alone).
  EXPECT_THROW(varlen_prefill_attention(args, {{0, 1, 0, 1, 0}}, nullptr, PrefillKernel::kSm80), InputError);
  args.kv.page_table_stride = 1;  // rows of one page cannot hold max_kv_len 128
  EXPECT_THROW(varlen_prefill_attention(args, {{0, 1, 0, 1, 0}}, nullptr), InputError);
  args.kv.page_table_stride = 2;
  // FP8 pools: the prefill kernels read bf16 (an FP8 cache is staged first).
  const float scales = 1.0f;
  args.kv.dtype = KvDtype::Fp8E4m3;
  args.kv.k_scales = args.kv.v_scales = &scales;
  EXPECT_THROW(varlen_prefill_attention(args, {{0, 1, 0, 1, 0}}, nullptr), InputError);
  args.kv.dtype = KvDtype::Bf16;
  args.kv.k_scales = args.kv.v_scales = nullptr;
  // Fused Δ: only over a sliding window, with gamma 16/32/64, chunks starting at a multiple of it
  // and contiguous queries (all refused before anything is launched).
  const std::vector<__nv_bfloat16> dense_rows(8);
  args.delta_dense = dense_rows.data();
  args.gamma = 64;
  EXPECT_THROW(varlen_prefill_attention(args, {{0, 1, 0, 1, 0}}, nullptr), InputError);  // window 0
  args.window = 128;
  EXPECT_THROW(varlen_prefill_attention(args, {{0, 1, 32, 64, 0}}, nullptr), InputError);  // starts mid-group
  args.gamma = 48;
  EXPECT_THROW(varlen_prefill_attention(args, {{0, 1, 0, 1, 0}}, nullptr), InputError);
  args.gamma = 64;
  args.q_pos = &table;
  EXPECT_THROW(varlen_prefill_attention(args, {{0, 1, 0, 1, 0}}, nullptr), InputError);
}

}  // namespace
}  // namespace deltainfer::cuda
