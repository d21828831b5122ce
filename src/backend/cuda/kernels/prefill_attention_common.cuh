#pragma once
// Pieces shared by the prefill attention kernels: the launch parameters, query positions and
// the per-query-tile bounds of the causal key range.
#include <cuda_bf16.h>

#include <cstdint>

namespace deltainfer::cuda::prefill {

using bf16 = __nv_bfloat16;

inline constexpr int kPageSize = 64;  // == the key tile: one key tile is one page

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
};

__device__ __forceinline__ int query_position(const Params& p, int row) {
  return p.q_pos != nullptr ? p.q_pos[row] : p.first_pos + row;
}

// Key tiles a query tile visits: [0, n_tiles); tiles below n_unmasked need no causal mask for
// any row of the tile (positions increase, so the first row is the most restrictive).
struct KeyRange {
  int n_tiles;
  int n_unmasked;
};

__device__ __forceinline__ KeyRange key_range(const Params& p, int row0, int rows) {
  const int first = query_position(p, row0);
  const int last = query_position(p, row0 + rows - 1);
  const int end = min(p.kv_len, last + 1);
  KeyRange r;
  r.n_tiles = (end + kPageSize - 1) / kPageSize;
  r.n_unmasked = min(p.kv_len, first + 1) / kPageSize;
  return r;
}

__device__ __forceinline__ uint32_t smem_u32(const void* ptr) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(ptr));
}

__device__ __forceinline__ uint32_t pack_bf16x2(float lo, float hi) {
  __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&v);
}

}  // namespace deltainfer::cuda::prefill
