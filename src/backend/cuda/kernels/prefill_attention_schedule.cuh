#pragma once
// Which key tiles a 128-row query block of the Hopper prefill kernels visits and how its boundary
// tiles are masked: dense causal, sliding window + sink (tile skipping), or the per-(head, query
// block) lists of 64-key blocks. Shared by the v3 kernel (prefill_attention_sm90.cu) and the
// FA3-style one (prefill_attention_ws.cu); both run the same schedule, so they differ only in how
// they pipeline the tiles. The schedule is per query block (per CTA): every consumer warpgroup of
// the block visits the same tiles, which the kernels' barrier counts rely on.
#include "backend/cuda/kernels/prefill_attention_common.cuh"

namespace deltainfer::cuda::prefill {

inline constexpr int kBlockM = 128;  // two consumer warpgroups x 64 rows
inline constexpr int kPagesPerTile = 2;
inline constexpr int kBlockN = kPagesPerTile * kPageSize;

// Which key tiles a query block visits: all up to the diagonal (dense), the sink and the
// window (sliding), or the caller's list of 64-key blocks (blocks).
enum class Mode { kDense, kSliding, kBlocks };

struct BlockInfo {
  int head;
  int kv_head;
  int q_row;  // row of the packed q where this block's sequence starts (varlen; else 0)
  bool zero_v_tail;  // varlen: consumers zero the last page's slots past kv_len (no tail map)
  int row0;
  int rows;
  int first;  // position of the block's first and last query
  int last;
  int seq_pages;
  int n_iter;      // tiles visited
  int n_unmasked;  // dense: tiles below this need no mask
  int sink_tiles;  // sliding: tiles [0, sink_tiles) then [win_begin, ...)
  int win_begin;
  const int32_t* blocks;  // blocks: this (head, query block)'s 64-key block list
  int n_blocks;
};

// p: the block's own sequence (a varlen launch has resolved its chunk into p already).
template <Mode M>
__device__ __forceinline__ BlockInfo block_info(const Params& p, int qblock, int q_row, bool varlen) {
  BlockInfo b{};
  b.head = blockIdx.x;
  b.kv_head = b.head / p.group;
  b.q_row = q_row;
  b.zero_v_tail = varlen && p.kv_len % kPageSize != 0;
  b.row0 = qblock * kBlockM;
  b.rows = min(kBlockM, p.n_q - b.row0);
  b.first = query_position(p, b.row0);
  b.last = query_position(p, b.row0 + b.rows - 1);
  b.seq_pages = (p.kv_len + kPageSize - 1) / kPageSize;
  const int end_tiles = (min(p.kv_len, b.last + 1) + kBlockN - 1) / kBlockN;
  if constexpr (M == Mode::kDense) {
    const KeyRange range = key_range(p, b.row0, b.rows, kBlockN);
    b.n_iter = range.n_tiles;
    b.n_unmasked = range.n_unmasked;
  } else if constexpr (M == Mode::kSliding) {
    b.win_begin = max(0, b.first - p.window + 1) / kBlockN;
    b.sink_tiles = min((p.sink + kBlockN - 1) / kBlockN, b.win_begin);
    b.n_iter = b.sink_tiles + end_tiles - b.win_begin;
  } else {
    const int n_qblocks = (p.n_q + kBlockM - 1) / kBlockM;
    const int list = b.head * n_qblocks + qblock;
    const int begin = p.block_offsets[list];
    b.blocks = p.block_indices + begin;
    b.n_blocks = p.block_offsets[list + 1] - begin;
    b.n_iter = (b.n_blocks + kPagesPerTile - 1) / kPagesPerTile;
  }
  return b;
}

// One key tile: the logical pages of its two 64-key slots (-1: empty, only the second can be)
// and whether any score of it needs a mask.
struct Tile {
  int page[kPagesPerTile];
  bool masked;
};

template <Mode M>
__device__ __forceinline__ Tile tile_at(const Params& p, const BlockInfo& b, int it) {
  Tile t;
  if constexpr (M == Mode::kBlocks) {
    t.page[0] = b.blocks[2 * it];
    t.page[1] = 2 * it + 1 < b.n_blocks ? b.blocks[2 * it + 1] : -1;
    t.masked = t.page[1] < 0 || max(t.page[0], t.page[1]) * kPageSize + kPageSize - 1 > b.first;
  } else {
    int tile = it;
    if constexpr (M == Mode::kSliding) tile = it < b.sink_tiles ? it : b.win_begin + it - b.sink_tiles;
    t.page[0] = tile * kPagesPerTile;
    t.page[1] = t.page[0] + 1 < b.seq_pages ? t.page[0] + 1 : -1;
    if constexpr (M == Mode::kDense) {
      t.masked = it >= b.n_unmasked;
    } else {
      // Unmasked: causal for the first row, and wholly sink or wholly inside the last row's
      // window (the last row's window starts latest).
      const int key_end = (tile + 1) * kBlockN;
      t.masked = !(key_end - 1 <= b.first &&
                   (key_end <= p.sink || tile * kBlockN > b.last - p.window));
    }
  }
  return t;
}

// Sets to -inf the scores of keys a row may not see: past its limit (causal, or an empty slot
// whose base is huge) and, with a window, keys in [sink, limit - window].
template <bool kWindow, int NS>
__device__ __forceinline__ void mask_tile(float (&s)[NS][4], const RowPair& rows,
                                          const Tile& t, int window, int sink, int lane) {
  constexpr int kHalf = NS / kPagesPerTile;  // 8-column blocks per slot
  int base[kPagesPerTile];
#pragma unroll
  for (int slot = 0; slot < kPagesPerTile; ++slot) {
    base[slot] = t.page[slot] >= 0 ? t.page[slot] * kPageSize : (1 << 30);
  }
#pragma unroll
  for (int j = 0; j < NS; ++j) {
    const int key = base[j / kHalf] + (j % kHalf) * 8 + 2 * (lane % 4);
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int k = key + (e & 1);
      const int limit = rows.limit[e / 2];
      bool hide = k > limit;
      if constexpr (kWindow) hide = hide || (k >= sink && k <= limit - window);
      if (hide) s[j][e] = -INFINITY;
    }
  }
}

}  // namespace deltainfer::cuda::prefill
