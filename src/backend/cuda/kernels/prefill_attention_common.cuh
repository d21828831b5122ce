#pragma once
// Pieces shared by the prefill attention kernels: the launch parameters, query positions and
// the per-query-tile bounds of the causal key range.
#include <cuda_bf16.h>

#include <cstdint>

#include "backend/cuda/paged_kv.h"

namespace deltainfer::cuda::prefill {

using bf16 = __nv_bfloat16;

// The engine's one page size (paged_kv.h); the kernels' key tile is one page.
inline constexpr int kPageSize = kKvPageSize;

struct Params {
  const bf16* q;
  const bf16* k_pool;
  const bf16* v_pool;
  const int32_t* page_table;
  const int32_t* q_pos;  // nullptr: position(i) = first_pos + i
  bf16* out;
  float* lse;
  int n_q;
  int n_heads;
  int n_kv_heads;
  int group;  // n_heads / n_kv_heads
  int kv_len;
  int first_pos;
  float scale_log2;  // softmax scale * log2(e): scores go through exp2
  // Sparse prefill (sm90 only; the dense launch ignores these). Sliding window: query at
  // position p sees keys j <= p with j < sink or j > p - window.
  int window;
  int sink;
  // Block-sparse: per (query head, 128-row query block) an ascending list of 64-key blocks,
  // CSR: block_indices[block_offsets[h * n_qblocks + qb] .. block_offsets[... + 1]).
  const int32_t* block_offsets;
  const int32_t* block_indices;
  // Fused delta correction (sparse kernels only, nullptr: off): dense outputs of the rows at
  // positions that are multiples of gamma, [n_strided][n_heads][D]; gamma divides 64.
  const bf16* delta_dense;
  int gamma;
};

// The chunk table of a varlen launch (count 0: a single-sequence launch). Chunk c owns the
// launch's query blocks [block_begin, next chunk's block_begin) and holds its blocks' values of
// the Params fields that differ per sequence. A varlen launch's q_pos and delta_dense hold every
// chunk's rows; each block offsets them to its chunk's.
inline constexpr int kMaxChunks = 64;  // == kMaxVarlenChunks

struct ChunkEntry {
  int q_row;
  int n_q;
  int first_pos;
  int kv_len;
  int page_row;
  int block_begin;
  int delta_row;  // first row of this chunk's Δ dense outputs (Params::delta_dense set)
};

struct ChunkTable {
  int count;
  int page_table_stride;
  ChunkEntry chunk[kMaxChunks];
};

__device__ __forceinline__ int query_position(const Params& p, int row) {
  return p.q_pos != nullptr ? p.q_pos[row] : p.first_pos + row;
}

// Key tiles of `tile` keys a query tile visits: [0, n_tiles); tiles below n_unmasked need no
// causal mask for any row of the tile (positions increase, so the first row is the most
// restrictive).
struct KeyRange {
  int n_tiles;
  int n_unmasked;
};

__device__ __forceinline__ KeyRange key_range(const Params& p, int row0, int rows, int tile) {
  const int first = query_position(p, row0);
  const int last = query_position(p, row0 + rows - 1);
  const int end = min(p.kv_len, last + 1);
  KeyRange r;
  r.n_tiles = (end + tile - 1) / tile;
  r.n_unmasked = min(p.kv_len, first + 1) / tile;
  return r;
}

__device__ __forceinline__ uint32_t smem_u32(const void* ptr) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(ptr));
}

// 2^x without the denormal range fix-ups of exp2f (softmax terms below 2^-126 are 0 anyway).
__device__ __forceinline__ float fast_exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

__device__ __forceinline__ uint32_t pack_bf16x2(float lo, float hi) {
  __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&v);
}

// Online softmax state of the two rows a thread holds in mma.sync / wgmma accumulators: rows
// lane/4 and lane/4 + 8 of its warp's 16 (elements 0,1 and 2,3 of each 8-column block).
struct RowPair {
  int limit[2];  // last key each row may see: min(position, kv_len - 1)
  float max[2] = {-INFINITY, -INFINITY};  // running max of scaled scores, log2 units
  float sum[2] = {0.0f, 0.0f};            // this thread's partial row sums
};

// Sets scores of keys past each row's limit to -inf; key0 is the key of column 0 of the tile.
template <int NS>
__device__ __forceinline__ void mask_scores(float (&s)[NS][4], const RowPair& rows, int key0,
                                            int lane) {
#pragma unroll
  for (int j = 0; j < NS; ++j) {
    const int key = key0 + j * 8 + 2 * (lane % 4);
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      if (key + (e & 1) > rows.limit[e / 2]) s[j][e] = -INFINITY;
    }
  }
}

// Updates the running max of both rows with this tile's scores; returns the exponent offset
// `use` for this tile and the factor alpha = exp2(old max - new max) for the earlier rows.
template <int NS>
__device__ __forceinline__ void update_max(const float (&s)[NS][4], RowPair& rows,
                                           float scale_log2, float (&use)[2], float (&alpha)[2]) {
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    float mx = -INFINITY;
#pragma unroll
    for (int j = 0; j < NS; ++j) mx = fmaxf(mx, fmaxf(s[j][2 * r], s[j][2 * r + 1]));
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
    const float new_max = fmaxf(rows.max[r], mx * scale_log2);
    // A row that has seen only masked keys keeps max -inf; subtracting 0 keeps exp2 at 0.
    use[r] = new_max == -INFINITY ? 0.0f : new_max;
    alpha[r] = fast_exp2(rows.max[r] - use[r]);
    rows.max[r] = new_max;
  }
}

// Turns the tile's scores into probabilities (in place); alpha as in update_max.
template <int NS>
__device__ __forceinline__ void softmax_scores(float (&s)[NS][4], RowPair& rows, float scale_log2,
                                               float (&alpha)[2]) {
  float use[2];
  update_max(s, rows, scale_log2, use, alpha);
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    float sum = 0.0f;
#pragma unroll
    for (int j = 0; j < NS; ++j) {
      s[j][2 * r] = fast_exp2(fmaf(s[j][2 * r], scale_log2, -use[r]));
      s[j][2 * r + 1] = fast_exp2(fmaf(s[j][2 * r + 1], scale_log2, -use[r]));
      sum += s[j][2 * r] + s[j][2 * r + 1];
    }
    rows.sum[r] = rows.sum[r] * alpha[r] + sum;
  }
}

template <int NO>
__device__ __forceinline__ void rescale_rows(float (&o)[NO][4], const float (&alpha)[2]) {
#pragma unroll
  for (int j = 0; j < NO; ++j) {
#pragma unroll
    for (int e = 0; e < 4; ++e) o[j][e] *= alpha[e / 2];
  }
}

template <int NS, int NO>
__device__ __forceinline__ void online_softmax(float (&s)[NS][4], float (&o)[NO][4],
                                               RowPair& rows, float scale_log2) {
  float alpha[2];
  softmax_scores(s, rows, scale_log2, alpha);
  rescale_rows(o, alpha);
}

// The A operand (16 rows x 16 keys, mma.sync / wgmma register layout) for key step kk, from
// the probabilities of 8-column blocks 2kk and 2kk+1.
template <int NS>
__device__ __forceinline__ void probs_as_a(uint32_t (&a)[4], const float (&s)[NS][4], int kk) {
  a[0] = pack_bf16x2(s[2 * kk][0], s[2 * kk][1]);
  a[1] = pack_bf16x2(s[2 * kk][2], s[2 * kk][3]);
  a[2] = pack_bf16x2(s[2 * kk + 1][0], s[2 * kk + 1][1]);
  a[3] = pack_bf16x2(s[2 * kk + 1][2], s[2 * kk + 1][3]);
}

// Normalizes and stores the two rows (block rows row_a and row_a + 8, of `rows` valid) and
// their log-sum-exp.
template <int NO>
__device__ __forceinline__ void store_rows(const Params& p, const float (&o)[NO][4],
                                           RowPair& rows, int row0, int row_a, int valid_rows,
                                           int head, int lane) {
  constexpr int D = NO * 8;
  const int64_t q_stride = static_cast<int64_t>(p.n_heads) * D;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    rows.sum[r] += __shfl_xor_sync(0xffffffffu, rows.sum[r], 1);
    rows.sum[r] += __shfl_xor_sync(0xffffffffu, rows.sum[r], 2);
    const int row = row_a + 8 * r;
    if (row >= valid_rows) continue;
    const float inv = 1.0f / rows.sum[r];
    bf16* out = p.out + (row0 + row) * q_stride + static_cast<int64_t>(head) * D + 2 * (lane % 4);
#pragma unroll
    for (int j = 0; j < NO; ++j) {
      *reinterpret_cast<uint32_t*>(out + j * 8) =
          pack_bf16x2(o[j][2 * r] * inv, o[j][2 * r + 1] * inv);
    }
    if (p.lse != nullptr && lane % 4 == 0) {
      constexpr float kLn2 = 0.69314718055994531f;
      p.lse[(row0 + row) * p.n_heads + head] = (rows.max[r] + log2f(rows.sum[r])) * kLn2;
    }
  }
}

__device__ __forceinline__ RowPair row_pair(const Params& p, int row0, int row_a, int valid_rows) {
  RowPair rows;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int pos = query_position(p, row0 + min(row_a + 8 * r, valid_rows - 1));
    rows.limit[r] = min(pos, p.kv_len - 1);
  }
  return rows;
}

}  // namespace deltainfer::cuda::prefill
