#pragma once
// The split-KV decode kernels shared by dense decode (decode_attention.cu) and sparse decode over
// an index set (sparse_decode.cu): one block per (sequence, KV head, split) streams its tokens
// through per-warp cp.async rings into tensor-core fragments, and a combine kernel merges splits.
//
// Per warp and step of 16 tokens, with G = the GQA group padded to 8 (one n8 tile per 8 heads):
//   S^T[16 tok][8 heads] = K[16 tok][d] · Q^T[d][8 heads]            (mma m16n8k16, A = K)
//   O^T[d][8 heads]     += V^T[d][16 tok] · P^T[16 tok][8 heads]      (mma m16n8k16, A = V^T)
// A thread loads 16 contiguous bytes of a K or V row (8 dims). The dot product does not care in
// which order the head dimension is summed, so K and Q use the same permuted order of d and the
// 16-byte pieces land directly in the A/B fragments. V must be transposed (its MMA operand packs
// pairs of tokens); movmatrix.trans does that in registers, and the rows of O^T then come out in
// a permuted order of d that out_dim() undoes once, at the end.
//
// FP8 pools (paged_kv.h): a thread's 16-byte load is 16 e4m3 codes of a row, dims 64j + 16c ..
// +15 for its piece j and c = lane % 4 (the same byte offsets as the bf16 pieces, so one address
// computation serves both). Codes widen exactly to bf16 in registers; the page scales, powers of
// two, are not multiplied into the values: a key row's scale multiplies its scores (q.(s c) =
// s (q.c)), a value row's scale its probabilities before they are packed to bf16 (p (s c) =
// (p s) c). Both are exact, so the FP8 kernel gives the bf16 kernel's result on a bf16 pool holding
// the dequantized values up to the order of the QK^T sums: the FP8 pieces group the head dimension
// into other MMA k-steps (see block_dim), so a score whose partial sums need more than f32's 24
// bits rounds differently (seen: LSEs 1.2e-4 apart at scores of ~100; kv_fp8_decode_test.cu bounds
// it). P.V is summed over tokens in the same order in both. Each chunk's four row scales (K and V,
// rows lo and hi) ride in the cp.async ring with the codes.
//
// Variants (template flags, so the dense path compiles exactly as before):
//   kGather     rows come from an index set of positions (sparse decode: DELTA, Quest, StreamingLLM)
//   kEmitLogits the scaled logits of every token are also written out (DELTA's Δ-layers)
//   kCluster    the splits of a (sequence, KV head) form one thread-block cluster (Hopper) and
//               merge through distributed shared memory: no partials in global memory and no
//               combine kernel, which is what a short split costs most (sparse decode).
#include <cooperative_groups.h>
#include <cuda_bf16.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/decode_attention.h"
#include "backend/cuda/kernels/fp8_convert.cuh"
#include "core/error.h"

namespace deltainfer::cuda::split_kv {

constexpr int kWarps = 4;
constexpr int kChunk = 16;               // tokens per warp step: the M of the score MMA

// The stored element type of the pools, as the kernels' template tag (one runtime dispatch on
// KvDtype: with_kv_type below).
struct Bf16Kv {
  static constexpr bool kFp8 = false;
  using Stored = __nv_bfloat16;
};
struct Fp8Kv {
  static constexpr bool kFp8 = true;
  using Stored = uint8_t;  // e4m3 codes
};

// 16-byte pieces of one row a thread loads: 8 bf16 dims or 16 FP8 dims each.
template <typename Kv, int kHeadDim>
constexpr int kRowPieces = Kv::kFp8 ? kHeadDim / 64 : kHeadDim / 32;
// 16-byte pieces a thread copies per chunk: K rows lo/hi and V rows lo/hi, and in FP8 one more
// holding the four row scales (K lo, K hi, V lo, V hi).
template <typename Kv, int kHeadDim>
constexpr int kLoads = 4 * kRowPieces<Kv, kHeadDim> + (Kv::kFp8 ? 1 : 0);
// cp.async ring depth per warp: the same bytes in flight per SM for both head dims (a d64
// chunk is half as many bytes, so its ring is twice as deep). FP8 chunks are about half the
// bytes again; their rings are as deep as the shared memory of the bf16 ring allows, so the FP8
// kernel keeps the bf16 kernel's occupancy.
template <typename Kv, int kHeadDim>
constexpr int kStages = Kv::kFp8 ? (kHeadDim == 64 ? 9 : 5) : (kHeadDim == 64 ? 6 : 3);
constexpr int kMaxSplits = 256;
constexpr int kMaxClusterSplits = 8;     // the portable cluster size
constexpr int kMinTokensPerSplit = 256;  // below this a split is mostly overhead
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

struct SplitParams {
  const __nv_bfloat16* q;
  const unsigned char* k_pool;  // bf16 values or e4m3 codes (Kv), [pages][n_kv_heads][64][head_dim]
  const unsigned char* v_pool;
  const float* k_scales;        // FP8 only: [pages][n_kv_heads]
  const float* v_scales;
  KvDtype dtype;
  const int32_t* page_table;
  const int32_t* kv_lens;      // dense: [batch]; gather: counts [batch][sets_per_seq]
  const int32_t* token_index;  // gather only: [batch][sets_per_seq][index_stride] positions
  int index_stride;
  int sets_per_seq;            // gather only: 1 (one set for all heads) or n_kv_heads
  float* logits;               // emit only: [batch][n_heads][logits_stride], log2 units
  int logits_stride;
  int page_table_stride;
  int n_heads;
  int n_kv_heads;
  int group;
  int num_splits;
  float scale_log2;
  float* partial_o;    // [batch][n_heads][num_splits][head_dim], normalized per split
  float* partial_lse;  // [batch][n_heads][num_splits], natural log
  __nv_bfloat16* out;  // kCluster only (the combine kernel takes them otherwise)
  float* lse;
};

__device__ __forceinline__ uint32_t word(const uint4& v, int i) {
  return i == 0 ? v.x : i == 1 ? v.y : i == 2 ? v.z : v.w;
}

__device__ __forceinline__ uint32_t transpose_8x8(uint32_t fragment) {
  uint32_t r;
  asm("movmatrix.sync.aligned.m8n8.trans.b16 %0, %1;" : "=r"(r) : "r"(fragment));
  return r;
}

__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}

__device__ __forceinline__ void mma_16816(float (&c)[4], uint32_t a0, uint32_t a1, uint32_t a2,
                                          uint32_t a3, uint32_t b0, uint32_t b1) {
  asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, "
      "{%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

// First head dimension of the 8 a thread with lane % 4 == c holds in 32-dim fragment block b (its
// K, Q and V pieces; see the file comment): bf16 loads 8 dims at 32b + 8c; FP8 loads 16 dims at
// 64 (b / 2) + 16c, whose first 8 feed block b even and the last 8 block b odd.
template <typename Kv>
__device__ __forceinline__ int block_dim(int b, int c) {
  return Kv::kFp8 ? 64 * (b / 2) + 16 * c + 8 * (b % 2) : 32 * b + 8 * c;
}

// Head dimension held by row `r` (0..15) of O^T m-tile (block b, half p); see the file comment.
template <typename Kv>
__device__ __forceinline__ int out_dim(int b, int p, int r) {
  return block_dim<Kv>(b, (r & 7) >> 1) + 4 * p + 2 * (r >> 3) + (r & 1);
}

// 16 e4m3 codes -> their 16 values as bf16 pairs, lo = codes 0..7, hi = codes 8..15 (exact).
__device__ __forceinline__ uint32_t widen_fp8_pair(uint32_t word, int pair) {
  const float2 f = e4m3x2_to_float2(word >> (16 * pair));
  return pack_bf16(f.x, f.y);
}

__device__ __forceinline__ void widen_fp8(const uint4& codes, uint4& lo, uint4& hi) {
  lo = make_uint4(widen_fp8_pair(codes.x, 0), widen_fp8_pair(codes.x, 1), widen_fp8_pair(codes.y, 0),
                  widen_fp8_pair(codes.y, 1));
  hi = make_uint4(widen_fp8_pair(codes.z, 0), widen_fp8_pair(codes.z, 1), widen_fp8_pair(codes.w, 0),
                  widen_fp8_pair(codes.w, 1));
}

__device__ __forceinline__ float max_over_tokens(float v) {
  v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 4));
  v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 8));
  return fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 16));
}

__device__ __forceinline__ float sum_over_tokens(float v) {
  v += __shfl_xor_sync(0xffffffffu, v, 4);
  v += __shfl_xor_sync(0xffffffffu, v, 8);
  return v + __shfl_xor_sync(0xffffffffu, v, 16);
}

template <int kHeadDim, int kHeadTiles>
struct SplitSmem {
  float m[kWarps][kHeadTiles * 8];
  float l[kWarps][kHeadTiles * 8];
  float o[kWarps][kHeadTiles * 8][kHeadDim];
  // kCluster: this split's normalized output and LSE (natural log), read by the cluster's peers.
  float split_o[kHeadTiles * 8][kHeadDim];
  float split_lse[kHeadTiles * 8];
};

__device__ __forceinline__ void cp_async_16(uint4* smem_dst, const void* src, bool valid) {
  const auto dst = static_cast<uint32_t>(__cvta_generic_to_shared(smem_dst));
  const int src_bytes = valid ? 16 : 0;  // 0: fill zeros, read nothing
  asm volatile("cp.async.cg.shared.global.L2::256B [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(src_bytes));
}

// One f32 (an FP8 row's scale); zero-filled when !valid.
__device__ __forceinline__ void cp_async_4(float* smem_dst, const float* src, bool valid) {
  const auto dst = static_cast<uint32_t>(__cvta_generic_to_shared(smem_dst));
  const int src_bytes = valid ? 4 : 0;
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(dst), "l"(src), "r"(src_bytes));
}

__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }

template <int kPending>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending));
}

// Starts the copy of the 16-token chunk at t0 into `slot` ([kLoads][32 lanes] pieces). Rows past
// `end` may hold anything (even NaN bit patterns), so they are zero-filled instead of read.
// Always commits one group, empty past the end, so that group counting stays uniform.
// Dense: chunk rows are the positions t0 .. t0 + 15 (one pool page, since chunks are 16-aligned).
// Gather: chunk rows are entries t0 .. t0 + 15 of the sequence's index set, each its own position.
// In FP8, rows past `end` get a zero scale (their scores are masked and their probabilities 0).
template <typename Kv, int kHeadDim, bool kGather>
__device__ __forceinline__ void issue_chunk(uint4* slot, int lane, int t0, int end, const int32_t* pages,
                                            const int32_t* index, const SplitParams& p, int kv_head) {
  using Stored = typename Kv::Stored;
  constexpr int kPieces = kRowPieces<Kv, kHeadDim>;
  constexpr int kPieceValues = 16 / static_cast<int>(sizeof(Stored));  // values of one 16-byte piece
  if (t0 < end) {
    const int row = lane / 4;
    const bool valid_lo = t0 + row < end;
    const bool valid_hi = t0 + row + 8 < end;
    size_t row_lo = 0;  // (page, KV head) slab rows: [pages][n_kv_heads][kKvPageSize]
    size_t row_hi = 0;
    if constexpr (kGather) {
      const int pos_lo = valid_lo ? __ldg(index + t0 + row) : 0;
      const int pos_hi = valid_hi ? __ldg(index + t0 + row + 8) : pos_lo;
      row_lo = (static_cast<size_t>(__ldg(pages + pos_lo / kKvPageSize)) * p.n_kv_heads + kv_head) * kKvPageSize +
               pos_lo % kKvPageSize;
      row_hi = (static_cast<size_t>(__ldg(pages + pos_hi / kKvPageSize)) * p.n_kv_heads + kv_head) * kKvPageSize +
               pos_hi % kKvPageSize;
    } else {
      const int page = pages[t0 / kKvPageSize];
      row_lo = (static_cast<size_t>(page) * p.n_kv_heads + kv_head) * kKvPageSize + t0 % kKvPageSize + row;
      row_hi = row_lo + 8;
    }
    // Piece j of thread lane % 4 is bytes 64j + 16 (lane % 4) of its row, in either type.
    const size_t offset_lo = row_lo * kHeadDim + kPieceValues * (lane % 4);
    const size_t offset_hi = row_hi * kHeadDim + kPieceValues * (lane % 4);
    const auto* k_pool = reinterpret_cast<const Stored*>(p.k_pool);
    const auto* v_pool = reinterpret_cast<const Stored*>(p.v_pool);
#pragma unroll
    for (int b = 0; b < kPieces; ++b) {
      cp_async_16(slot + (0 * kPieces + b) * 32 + lane, k_pool + offset_lo + 4 * kPieceValues * b, valid_lo);
      cp_async_16(slot + (1 * kPieces + b) * 32 + lane, k_pool + offset_hi + 4 * kPieceValues * b, valid_hi);
      cp_async_16(slot + (2 * kPieces + b) * 32 + lane, v_pool + offset_lo + 4 * kPieceValues * b, valid_lo);
      cp_async_16(slot + (3 * kPieces + b) * 32 + lane, v_pool + offset_hi + 4 * kPieceValues * b, valid_hi);
    }
    if constexpr (Kv::kFp8) {
      // The slab of a row is its row index / kKvPageSize: (page, KV head), the scales' index.
      float* scales = reinterpret_cast<float*>(slot + 4 * kPieces * 32 + lane);
      cp_async_4(scales + 0, p.k_scales + row_lo / kKvPageSize, valid_lo);
      cp_async_4(scales + 1, p.k_scales + row_hi / kKvPageSize, valid_hi);
      cp_async_4(scales + 2, p.v_scales + row_lo / kKvPageSize, valid_lo);
      cp_async_4(scales + 3, p.v_scales + row_hi / kKvPageSize, valid_hi);
    }
  }
  cp_async_commit();
}

// The last step of a clustered split kernel: every split's (o, lse) is in its shared memory; the
// cluster's blocks share out the (head, dim) outputs of the group and merge the splits as the
// combine kernel does. The second sync keeps each block's shared memory alive until its peers
// have read it.
template <int kHeadDim, int kHeadTiles>
__device__ __forceinline__ void cluster_combine(const SplitParams& p, SplitSmem<kHeadDim, kHeadTiles>& smem,
                                                int seq, int first_head) {
  namespace cg = cooperative_groups;
  cg::cluster_group cluster = cg::this_cluster();
  cluster.sync();
  const int splits = static_cast<int>(cluster.num_blocks());
  const int rank = static_cast<int>(cluster.block_rank());
  for (int idx = rank * kWarps * 32 + static_cast<int>(threadIdx.x); idx < p.group * kHeadDim;
       idx += splits * kWarps * 32) {
    const int g = idx / kHeadDim;
    const int d = idx % kHeadDim;
    float lse_max = -INFINITY;
    for (int s = 0; s < splits; ++s) lse_max = fmaxf(lse_max, cluster.map_shared_rank(&smem, s)->split_lse[g]);
    float weight_sum = 0.0f;
    float acc = 0.0f;
    if (lse_max != -INFINITY) {
      for (int s = 0; s < splits; ++s) {
        const SplitSmem<kHeadDim, kHeadTiles>* peer = cluster.map_shared_rank(&smem, s);
        const float weight = expf(peer->split_lse[g] - lse_max);
        weight_sum += weight;
        acc += weight * peer->split_o[g][d];
      }
    }
    const size_t head_row = static_cast<size_t>(seq) * p.n_heads + first_head + g;
    p.out[head_row * kHeadDim + d] = __float2bfloat16(lse_max == -INFINITY ? 0.0f : acc / weight_sum);
    if (p.lse != nullptr && d == 0) p.lse[head_row] = lse_max == -INFINITY ? -INFINITY : lse_max + logf(weight_sum);
  }
  cluster.sync();
}

template <typename Kv, int kHeadDim, int kHeadTiles>
constexpr size_t split_smem_bytes() {
  const size_t ring = static_cast<size_t>(kWarps) * kStages<Kv, kHeadDim> * kLoads<Kv, kHeadDim> * 32 * sizeof(uint4);
  const size_t merge = sizeof(SplitSmem<kHeadDim, kHeadTiles>);
  return ring > merge ? ring : merge;
}

// grid: (batch * n_kv_heads, num_splits); block: kWarps warps.
template <typename Kv, int kHeadDim, int kHeadTiles, bool kGather, bool kEmitLogits, bool kCluster = false>
__global__ void __launch_bounds__(kWarps * 32)
    decode_split_kernel(const SplitParams p) {
  constexpr int kBlocks = kHeadDim / 32;  // 32-dim fragment blocks: 8 dims of each per thread
  constexpr int kPieces = kRowPieces<Kv, kHeadDim>;
  constexpr int kRing = kStages<Kv, kHeadDim>;
  constexpr int kSlot = kLoads<Kv, kHeadDim> * 32;  // uint4s per ring slot
  constexpr int kMTiles = 2 * kBlocks;    // m16 tiles of O^T
  extern __shared__ __align__(16) unsigned char smem_raw[];

  const int seq = static_cast<int>(blockIdx.x) / p.n_kv_heads;
  const int kv_head = static_cast<int>(blockIdx.x) % p.n_kv_heads;
  const int split = static_cast<int>(blockIdx.y);
  const int warp = static_cast<int>(threadIdx.x) / 32;
  const int lane = static_cast<int>(threadIdx.x) % 32;
  const int row = lane / 4;  // token (S, K, V) or head (Q) row of the fragment

  // Gather: the split runs over the entries of the index set, not over positions.
  const int set = kGather ? seq * p.sets_per_seq + (p.sets_per_seq > 1 ? kv_head : 0) : seq;
  const int kv_len = p.kv_lens[set];
  const int32_t* index = kGather ? p.token_index + static_cast<size_t>(set) * p.index_stride : nullptr;
  const int per_split = ((kv_len + p.num_splits - 1) / p.num_splits + kChunk - 1) / kChunk * kChunk;
  const int begin = split * per_split;
  const int end = min(kv_len, begin + per_split);
  const int first_head = kv_head * p.group;

  uint4 q_frag[kHeadTiles][kBlocks];
#pragma unroll
  for (int nt = 0; nt < kHeadTiles; ++nt) {
    const int g = nt * 8 + row;
    const __nv_bfloat16* q_row = p.q + (static_cast<size_t>(seq) * p.n_heads + first_head + g) * kHeadDim;
#pragma unroll
    for (int b = 0; b < kBlocks; ++b) {
      q_frag[nt][b] = g < p.group ? *reinterpret_cast<const uint4*>(q_row + block_dim<Kv>(b, lane % 4))
                                  : make_uint4(0, 0, 0, 0);
    }
  }

  float o[kHeadTiles][kMTiles][4];
  float m[kHeadTiles][2];
  float l[kHeadTiles][2];
#pragma unroll
  for (int nt = 0; nt < kHeadTiles; ++nt) {
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      m[nt][j] = -INFINITY;
      l[nt][j] = 0.0f;
    }
#pragma unroll
    for (int mt = 0; mt < kMTiles; ++mt) {
#pragma unroll
      for (int i = 0; i < 4; ++i) o[nt][mt][i] = 0.0f;
    }
  }

  // Each warp streams its chunks through its own ring of kStages shared-memory slots with
  // cp.async, kStages - 1 chunks in flight while it computes on one. A thread reads back only the
  // 16-byte pieces it copied itself, so the ring needs no barriers.
  uint4* ring = reinterpret_cast<uint4*>(smem_raw) + warp * kRing * kSlot;
  const int32_t* pages = p.page_table + static_cast<size_t>(seq) * p.page_table_stride;
  constexpr int kStride = kWarps * kChunk;
  int issue_t0 = begin + warp * kChunk;
#pragma unroll
  for (int s = 0; s < kRing - 1; ++s, issue_t0 += kStride) {
    issue_chunk<Kv, kHeadDim, kGather>(ring + s * kSlot, lane, issue_t0, end, pages, index, p, kv_head);
  }
  int stage = 0;
  for (int t0 = begin + warp * kChunk; t0 < end; t0 += kStride, issue_t0 += kStride) {
    cp_async_wait<kRing - 2>();
    const uint4* slot = ring + stage * kSlot + lane;
    uint4 k_lo[kBlocks], k_hi[kBlocks], v_lo[kBlocks], v_hi[kBlocks];
    [[maybe_unused]] float4 row_scales{};  // FP8: K lo, K hi, V lo, V hi
    if constexpr (Kv::kFp8) {
#pragma unroll
      for (int j = 0; j < kPieces; ++j) {
        widen_fp8(slot[(0 * kPieces + j) * 32], k_lo[2 * j], k_lo[2 * j + 1]);
        widen_fp8(slot[(1 * kPieces + j) * 32], k_hi[2 * j], k_hi[2 * j + 1]);
        widen_fp8(slot[(2 * kPieces + j) * 32], v_lo[2 * j], v_lo[2 * j + 1]);
        widen_fp8(slot[(3 * kPieces + j) * 32], v_hi[2 * j], v_hi[2 * j + 1]);
      }
      row_scales = *reinterpret_cast<const float4*>(slot + 4 * kPieces * 32);
    } else {
#pragma unroll
      for (int b = 0; b < kBlocks; ++b) {
        k_lo[b] = slot[(0 * kBlocks + b) * 32];
        k_hi[b] = slot[(1 * kBlocks + b) * 32];
        v_lo[b] = slot[(2 * kBlocks + b) * 32];
        v_hi[b] = slot[(3 * kBlocks + b) * 32];
      }
    }
    // The slot read in the previous step is free again (its data went into registers and MMAs).
    const int free_slot = stage == 0 ? kRing - 1 : stage - 1;
    issue_chunk<Kv, kHeadDim, kGather>(ring + free_slot * kSlot, lane, issue_t0, end, pages, index, p, kv_head);
    stage = stage == kRing - 1 ? 0 : stage + 1;
    const bool valid_lo = t0 + row < end;
    const bool valid_hi = t0 + row + 8 < end;

    uint32_t p_frag[kHeadTiles][2];
#pragma unroll
    for (int nt = 0; nt < kHeadTiles; ++nt) {
      float s[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
      for (int b = 0; b < kBlocks; ++b) {
#pragma unroll
        for (int half = 0; half < 2; ++half) {
          mma_16816(s, word(k_lo[b], 2 * half), word(k_hi[b], 2 * half), word(k_lo[b], 2 * half + 1),
                    word(k_hi[b], 2 * half + 1), word(q_frag[nt][b], 2 * half),
                    word(q_frag[nt][b], 2 * half + 1));
        }
      }
      // s[0], s[1]: token row, heads 2*(lane%4) + {0, 1}; s[2], s[3]: token row + 8.
      if constexpr (Kv::kFp8) {  // the key rows' scales, before anything reads the scores
        s[0] *= row_scales.x;
        s[1] *= row_scales.x;
        s[2] *= row_scales.y;
        s[3] *= row_scales.y;
      }
      s[0] = valid_lo ? s[0] * p.scale_log2 : -INFINITY;
      s[1] = valid_lo ? s[1] * p.scale_log2 : -INFINITY;
      s[2] = valid_hi ? s[2] * p.scale_log2 : -INFINITY;
      s[3] = valid_hi ? s[3] * p.scale_log2 : -INFINITY;
      if constexpr (kEmitLogits) {
        // The scaled logits (log2 units) of this thread's token rows and head pair, for DELTA's
        // selection once the final log-sum-exp is known.
        // Head-major rows: lanes of one head pair write 8 consecutive tokens, whole 32-byte sectors.
        const int g = nt * 8 + 2 * (lane % 4);
        const size_t next_head = static_cast<size_t>(p.logits_stride);
        float* dst = p.logits + (static_cast<size_t>(seq) * p.n_heads + first_head + g) * next_head + t0 + row;
        if (g < p.group && valid_lo) dst[0] = s[0];
        if (g + 1 < p.group && valid_lo) dst[next_head] = s[1];
        if (g < p.group && valid_hi) dst[8] = s[2];
        if (g + 1 < p.group && valid_hi) dst[next_head + 8] = s[3];
      }
      float prob[4];
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        const float m_new = fmaxf(m[nt][j], max_over_tokens(fmaxf(s[j], s[j + 2])));
        const float base = m_new == -INFINITY ? 0.0f : m_new;
        const float alpha = exp2f(m[nt][j] - base);
        m[nt][j] = m_new;
        prob[j] = exp2f(s[j] - base);
        prob[j + 2] = exp2f(s[j + 2] - base);
        l[nt][j] = l[nt][j] * alpha + prob[j] + prob[j + 2];
#pragma unroll
        for (int mt = 0; mt < kMTiles; ++mt) {
          o[nt][mt][j] *= alpha;
          o[nt][mt][j + 2] *= alpha;
        }
      }
      if constexpr (Kv::kFp8) {  // the value rows' scales (l above sums the unscaled probabilities)
        p_frag[nt][0] = transpose_8x8(pack_bf16(prob[0] * row_scales.z, prob[1] * row_scales.z));
        p_frag[nt][1] = transpose_8x8(pack_bf16(prob[2] * row_scales.w, prob[3] * row_scales.w));
      } else {
        p_frag[nt][0] = transpose_8x8(pack_bf16(prob[0], prob[1]));
        p_frag[nt][1] = transpose_8x8(pack_bf16(prob[2], prob[3]));
      }
    }

#pragma unroll
    for (int b = 0; b < kBlocks; ++b) {
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        const uint32_t a0 = transpose_8x8(word(v_lo[b], 2 * half));
        const uint32_t a1 = transpose_8x8(word(v_lo[b], 2 * half + 1));
        const uint32_t a2 = transpose_8x8(word(v_hi[b], 2 * half));
        const uint32_t a3 = transpose_8x8(word(v_hi[b], 2 * half + 1));
#pragma unroll
        for (int nt = 0; nt < kHeadTiles; ++nt) {
          mma_16816(o[nt][2 * b + half], a0, a1, a2, a3, p_frag[nt][0], p_frag[nt][1]);
        }
      }
    }
  }
  cp_async_wait<0>();
  __syncthreads();  // the rings become the merge buffer below
  auto& smem = *reinterpret_cast<SplitSmem<kHeadDim, kHeadTiles>*>(smem_raw);

  // Merge the warps' (m, l, O) through shared memory.
#pragma unroll
  for (int nt = 0; nt < kHeadTiles; ++nt) {
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      const float l_sum = sum_over_tokens(l[nt][j]);
      const int h = nt * 8 + 2 * (lane % 4) + j;
      if (row == 0) {
        smem.m[warp][h] = m[nt][j];
        smem.l[warp][h] = l_sum;
      }
#pragma unroll
      for (int b = 0; b < kBlocks; ++b) {
#pragma unroll
        for (int half = 0; half < 2; ++half) {
          smem.o[warp][h][out_dim<Kv>(b, half, row)] = o[nt][2 * b + half][j];
          smem.o[warp][h][out_dim<Kv>(b, half, row + 8)] = o[nt][2 * b + half][j + 2];
        }
      }
    }
  }
  __syncthreads();

  for (int idx = static_cast<int>(threadIdx.x); idx < p.group * kHeadDim; idx += kWarps * 32) {
    const int g = idx / kHeadDim;
    const int d = idx % kHeadDim;
    float m_max = -INFINITY;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) m_max = fmaxf(m_max, smem.m[w][g]);
    float l_total = 0.0f;
    float o_total = 0.0f;
    if (m_max != -INFINITY) {
#pragma unroll
      for (int w = 0; w < kWarps; ++w) {
        const float weight = exp2f(smem.m[w][g] - m_max);
        l_total += weight * smem.l[w][g];
        o_total += weight * smem.o[w][g][d];
      }
    }
    const float split_o = m_max == -INFINITY ? 0.0f : o_total / l_total;
    const float split_lse = m_max == -INFINITY ? -INFINITY : (m_max + log2f(l_total)) * kLn2;
    if constexpr (kCluster) {
      smem.split_o[g][d] = split_o;
      if (d == 0) smem.split_lse[g] = split_lse;
    } else {
      const size_t head_row = static_cast<size_t>(seq) * p.n_heads + first_head + g;
      const size_t slot = head_row * p.num_splits + split;
      p.partial_o[slot * kHeadDim + d] = split_o;
      if (d == 0) p.partial_lse[slot] = split_lse;
    }
  }
  if constexpr (kCluster) cluster_combine<kHeadDim, kHeadTiles>(p, smem, seq, first_head);
}

// grid: batch * n_heads; block: head_dim threads (one output dimension each). A template only so
// that every file including this header gets its own instantiation without a duplicate symbol.
template <int kUnused = 0>
__global__ void decode_combine_kernel(const float* partial_o, const float* partial_lse, int num_splits,
                                      int head_dim, __nv_bfloat16* out, float* lse) {
  const size_t head_row = blockIdx.x;
  const int d = static_cast<int>(threadIdx.x);
  const float* split_lse = partial_lse + head_row * num_splits;
  float lse_max = -INFINITY;
  // Unrolled so that several partials are in flight at once: this kernel is latency-bound.
#pragma unroll 8
  for (int s = 0; s < num_splits; ++s) lse_max = fmaxf(lse_max, split_lse[s]);
  float weight_sum = 0.0f;
  float acc = 0.0f;
  if (lse_max != -INFINITY) {
#pragma unroll 8
    for (int s = 0; s < num_splits; ++s) {
      const float weight = expf(split_lse[s] - lse_max);
      weight_sum += weight;
      acc += weight * partial_o[(head_row * num_splits + s) * head_dim + d];
    }
  }
  out[head_row * head_dim + d] = __float2bfloat16(lse_max == -INFINITY ? 0.0f : acc / weight_sum);
  if (lse != nullptr && d == 0) lse[head_row] = lse_max == -INFINITY ? -INFINITY : lse_max + logf(weight_sum);
}


inline void validate_shape(const char* what, int batch, int n_heads, int n_kv_heads, int head_dim, int max_kv_len) {
  if (head_dim != 64 && head_dim != 128) {
    throw_input_error("{}: head_dim {} is not supported (64 or 128)", what, head_dim);
  }
  if (batch < 1 || n_kv_heads < 1 || n_heads < n_kv_heads || n_heads % n_kv_heads != 0) {
    throw_input_error("{}: batch {}, n_heads {}, n_kv_heads {}: need batch >= 1 and "
                      "n_heads a multiple of n_kv_heads", what, batch, n_heads, n_kv_heads);
  }
  if (n_heads / n_kv_heads > 16) {
    throw_input_error("{}: GQA group {} exceeds 16", what, n_heads / n_kv_heads);
  }
  if (max_kv_len < 0) throw_input_error("{}: max_kv_len {} < 0", what, max_kv_len);
}


// Points `p` at the paged cache (already validated): pools, scales, page table and KV heads.
inline void point_at_cache(SplitParams& p, const PagedKv& kv) {
  p.k_pool = static_cast<const unsigned char*>(kv.k_pool);
  p.v_pool = static_cast<const unsigned char*>(kv.v_pool);
  p.k_scales = kv.k_scales;
  p.v_scales = kv.v_scales;
  p.dtype = kv.dtype;
  p.page_table = kv.page_table;
  p.page_table_stride = kv.page_table_stride;
  p.n_kv_heads = kv.n_kv_heads;
}

// The one runtime dispatch on the pools' element type: calls launch(Bf16Kv{}) or launch(Fp8Kv{}).
template <typename Launch>
void with_kv_type(KvDtype dtype, Launch&& launch) {
  if (dtype == KvDtype::Fp8E4m3) {
    launch(Fp8Kv{});
  } else {
    launch(Bf16Kv{});
  }
}

inline size_t align_256(size_t bytes) { return (bytes + 255) / 256 * 256; }

inline int ceil_div(int a, int b) { return (a + b - 1) / b; }

// Raises the kernel's dynamic shared-memory limit once (the ring is over the 48 KB default).
template <typename Kv, int kHeadDim, int kHeadTiles, bool kGather, bool kEmitLogits, bool kCluster = false>
void prepare_split_kernel() {
  static const bool prepared = [] {
    CUDA_CHECK(cudaFuncSetAttribute(decode_split_kernel<Kv, kHeadDim, kHeadTiles, kGather, kEmitLogits, kCluster>,
                                    cudaFuncAttributeMaxDynamicSharedMemorySize,
                                    static_cast<int>(split_smem_bytes<Kv, kHeadDim, kHeadTiles>())));
    return true;
  }();
  (void)prepared;
}

// Occupancy of the bf16 dense kernel; the variants share its shared memory (FP8 rings are sized
// not to exceed it) and (to within a few registers) its register count, so one number plans all.
template <int kHeadDim, int kHeadTiles>
int blocks_per_sm() {
  static_assert(split_smem_bytes<Fp8Kv, kHeadDim, kHeadTiles>() <= split_smem_bytes<Bf16Kv, kHeadDim, kHeadTiles>(),
                "the FP8 ring must not lower the occupancy the plan assumes");
  static const int cached = [] {
    prepare_split_kernel<Bf16Kv, kHeadDim, kHeadTiles, false, false>();
    int blocks = 0;
    CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(
        &blocks, decode_split_kernel<Bf16Kv, kHeadDim, kHeadTiles, false, false>, kWarps * 32,
        split_smem_bytes<Bf16Kv, kHeadDim, kHeadTiles>()));
    return blocks > 0 ? blocks : 1;
  }();
  return cached;
}

inline int blocks_per_sm_for(int head_dim, int head_tiles) {
  if (head_dim == 64) return head_tiles == 1 ? blocks_per_sm<64, 1>() : blocks_per_sm<64, 2>();
  return head_tiles == 1 ? blocks_per_sm<128, 1>() : blocks_per_sm<128, 2>();
}

// One full wave of equal blocks: the split count that makes `units` (sequence × KV head pairs) ×
// splits fill every multiprocessor, unless the rows are too few to give each split
// `min_tokens_per_split`. `forced` > 0 overrides. Deterministic in its arguments.
inline int plan_splits(int units, int head_dim, int group, int max_rows, int min_tokens_per_split, int sm_count,
                       int forced) {
  const int head_tiles = group > 8 ? 2 : 1;
  const int wave = std::max(1, sm_count) * blocks_per_sm_for(head_dim, head_tiles);
  const int wanted = ceil_div(wave, std::max(1, units));
  const int useful = std::max(1, ceil_div(max_rows, min_tokens_per_split));
  return std::max(1, std::min({forced > 0 ? forced : std::min(wanted, useful), kMaxSplits}));
}

inline size_t workspace_bytes(int batch, int n_heads, int head_dim, int num_splits) {
  const size_t slots = static_cast<size_t>(batch) * n_heads * num_splits;
  return align_256(slots * head_dim * sizeof(float)) + align_256(slots * sizeof(float));
}

// Points the partial outputs and log-sum-exps of `p` into `workspace` (laid out as above).
inline void place_partials(SplitParams& p, void* workspace, int batch, int head_dim) {
  const size_t slots = static_cast<size_t>(batch) * p.n_heads * p.num_splits;
  p.partial_o = static_cast<float*>(workspace);
  p.partial_lse =
      reinterpret_cast<float*>(static_cast<char*>(workspace) + align_256(slots * head_dim * sizeof(float)));
}

template <typename Kv, int kHeadDim, int kHeadTiles, bool kGather, bool kEmitLogits>
void launch_split(const SplitParams& p, dim3 grid, cudaStream_t stream) {
  prepare_split_kernel<Kv, kHeadDim, kHeadTiles, kGather, kEmitLogits>();
  decode_split_kernel<Kv, kHeadDim, kHeadTiles, kGather, kEmitLogits>
      <<<grid, kWarps * 32, split_smem_bytes<Kv, kHeadDim, kHeadTiles>(), stream>>>(p);
}

// The splits of each (sequence, KV head) as one cluster along grid.y (num_splits <= 8).
template <typename Kv, int kHeadDim, int kHeadTiles>
void launch_clustered_gather(const SplitParams& p, dim3 grid, cudaStream_t stream) {
  prepare_split_kernel<Kv, kHeadDim, kHeadTiles, true, false, true>();
  cudaLaunchConfig_t config{};
  config.gridDim = grid;
  config.blockDim = dim3(kWarps * 32);
  config.dynamicSmemBytes = split_smem_bytes<Kv, kHeadDim, kHeadTiles>();
  config.stream = stream;
  cudaLaunchAttribute attribute{};
  attribute.id = cudaLaunchAttributeClusterDimension;
  attribute.val.clusterDim.x = 1;
  attribute.val.clusterDim.y = grid.y;
  attribute.val.clusterDim.z = 1;
  config.attrs = &attribute;
  config.numAttrs = 1;
  CUDA_CHECK(cudaLaunchKernelEx(&config, decode_split_kernel<Kv, kHeadDim, kHeadTiles, true, false, true>, p));
}

// Sparse decode with the cluster merge: one launch, output written by the split kernel itself.
inline void launch_gather_clustered(const SplitParams& p, int batch, int head_dim, cudaStream_t stream) {
  if (p.num_splits > kMaxClusterSplits) {
    throw_input_error("sparse decode: {} splits cannot form one cluster (at most {})", p.num_splits,
                      kMaxClusterSplits);
  }
  const dim3 grid(static_cast<unsigned>(batch * p.n_kv_heads), static_cast<unsigned>(p.num_splits));
  const bool wide_group = p.group > 8;
  with_kv_type(p.dtype, [&](auto kv) {
    using Kv = decltype(kv);
    if (head_dim == 64) {
      wide_group ? launch_clustered_gather<Kv, 64, 2>(p, grid, stream)
                 : launch_clustered_gather<Kv, 64, 1>(p, grid, stream);
    } else {
      wide_group ? launch_clustered_gather<Kv, 128, 2>(p, grid, stream)
                 : launch_clustered_gather<Kv, 128, 1>(p, grid, stream);
    }
  });
  CUDA_CHECK_LAUNCH();
}

template <bool kGather, bool kEmitLogits>
void launch_for_shape(const SplitParams& p, int head_dim, dim3 grid, cudaStream_t stream) {
  const bool wide_group = p.group > 8;
  with_kv_type(p.dtype, [&](auto kv) {
    using Kv = decltype(kv);
    if (head_dim == 64) {
      wide_group ? launch_split<Kv, 64, 2, kGather, kEmitLogits>(p, grid, stream)
                 : launch_split<Kv, 64, 1, kGather, kEmitLogits>(p, grid, stream);
    } else {
      wide_group ? launch_split<Kv, 128, 2, kGather, kEmitLogits>(p, grid, stream)
                 : launch_split<Kv, 128, 1, kGather, kEmitLogits>(p, grid, stream);
    }
  });
}

// Launches the split kernel (variant by flags) and the combine kernel on `stream`.
template <bool kGather, bool kEmitLogits>
void launch(const SplitParams& p, int batch, int head_dim, __nv_bfloat16* out, float* lse, cudaStream_t stream) {
  const dim3 grid(static_cast<unsigned>(batch * p.n_kv_heads), static_cast<unsigned>(p.num_splits));
  launch_for_shape<kGather, kEmitLogits>(p, head_dim, grid, stream);
  CUDA_CHECK_LAUNCH();
  decode_combine_kernel<><<<static_cast<unsigned>(batch * p.n_heads), static_cast<unsigned>(head_dim), 0, stream>>>(
      p.partial_o, p.partial_lse, p.num_splits, head_dim, out, lse);
  CUDA_CHECK_LAUNCH();
}

}  // namespace deltainfer::cuda::split_kv
