// Hopper prefill attention, FlashAttention-3 style (dense causal, sliding window + sink, and
// block-sparse lists share it: they differ only in which key tiles a query block visits): a producer warp issues TMA loads of the Q
// tile and of K/V tiles (two 64-key pages each) into a two-stage shared-memory ring guarded by
// mbarriers; two consumer warpgroups (64 query rows each) run S = Q K^T with wgmma from shared
// memory, the online softmax in registers, and O += P V with P from registers (wgmma RS).
#include <cuda.h>
#include <cudaTypedefs.h>

#include "backend/cuda/kernels/hopper_pipeline.cuh"
#include "backend/cuda/kernels/hopper_tensor_map.cuh"
#include "backend/cuda/kernels/prefill_attention_delta.cuh"
#include "backend/cuda/kernels/prefill_attention_launch.cuh"
#include "backend/cuda/kernels/prefill_attention_schedule.cuh"
#include "backend/cuda/kernels/prefill_attention_varlen.cuh"
#include "backend/cuda/kernels/prefill_attention_wgmma.cuh"

namespace deltainfer::cuda::prefill {
namespace {

using hopper::mbar_arrive;
using hopper::mbar_init;
using hopper::tma_load_3d;

constexpr int kStages = 2;
constexpr int kThreads = 384;  // producer warpgroup + two consumer warpgroups
constexpr uint32_t kBoxBytes = 64 * 64 * 2;  // one TMA box: 64 rows x 128 bytes, 128B swizzle

// Shared-memory map (byte offsets from a 1024-aligned base). Tiles are stored as column halves
// of 64 elements: [half][rows][64], which is the 128B-swizzled K-major (and, for V, MN-major)
// layout wgmma reads.
template <int D>
struct Layout {
  static constexpr int kHalves = D / 64;
  static constexpr uint32_t kQWarpgroup = kHalves * kBoxBytes;             // [half][64][64]
  static constexpr uint32_t kKvTile = kHalves * kPagesPerTile * kBoxBytes;  // [half][128][64]
  static constexpr uint32_t kKvHalf = kPagesPerTile * kBoxBytes;
  static constexpr uint32_t kQ = 0;
  static constexpr uint32_t kK = kQ + 2 * kQWarpgroup;
  static constexpr uint32_t kV = kK + kStages * kKvTile;
  static constexpr uint32_t kBarriers = kV + kStages * kKvTile;
  static constexpr int kBytes = static_cast<int>(kBarriers) + 16 * 8 + 1024;  // + alignment slack
};

// mbarrier slots
constexpr int kQFull = 0;
constexpr int kKFull = 1;   // + stage
constexpr int kVFull = 3;   // + stage
constexpr int kKEmpty = 5;  // + stage
constexpr int kVEmpty = 7;  // + stage
constexpr int kBarrierCount = 9;

// The spin v3 has run with on the H200: try_wait and its retry branch in one asm block. The
// FA3-style kernel's hopper::mbar_wait loops in C++ around try_wait, which ptxas schedules
// differently; v3 keeps the form it was measured with.
__device__ __forceinline__ void mbar_wait(uint32_t bar, uint32_t parity) {
  asm volatile(
      "{\n.reg .pred done;\nWAIT:\n"
      "mbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n"
      "@!done bra WAIT;\n}\n" ::"r"(bar),
      "r"(parity)
      : "memory");
}


// One thread: Q once, then K and V of every tile into the stage ring. The last page of the
// sequence goes through the tail map of V, whose slot extent is kv_len % 64, so the slots past
// kv_len arrive as zeros (0 * garbage could be NaN in P.V; K garbage is masked to -inf).
template <int D, Mode M>
__device__ void produce(const CUtensorMap* tm_q, const CUtensorMap* tm_k, const CUtensorMap* tm_v,
                        const CUtensorMap* tm_v_tail, const Params& p, const BlockInfo& b,
                        uint32_t base) {
  using L = Layout<D>;
  const uint32_t bars = base + L::kBarriers;
  const int q_warpgroups = (b.rows + 63) / 64;
  hopper::mbar_arrive_expect_tx(bars + 8 * kQFull, q_warpgroups * L::kQWarpgroup);
  for (int wg = 0; wg < q_warpgroups; ++wg) {
    for (int h = 0; h < L::kHalves; ++h) {
      tma_load_3d(base + L::kQ + wg * L::kQWarpgroup + h * kBoxBytes, tm_q, bars + 8 * kQFull,
                  h * 64, b.head, b.q_row + b.row0 + wg * 64);
    }
  }
  const bool tail = !b.zero_v_tail && p.kv_len % kPageSize != 0;
  for (int it = 0; it < b.n_iter; ++it) {
    const int stage = it % kStages;
    const uint32_t parity = ((it / kStages) & 1) ^ 1;
    const Tile t = tile_at<M>(p, b, it);
    const int pages = t.page[1] >= 0 ? kPagesPerTile : 1;
    const uint32_t bytes = static_cast<uint32_t>(pages * L::kHalves) * kBoxBytes;
    int page_head[kPagesPerTile];
    for (int pg = 0; pg < pages; ++pg) {
      page_head[pg] = p.page_table[t.page[pg]] * p.n_kv_heads + b.kv_head;
    }
    mbar_wait(bars + 8 * (kKEmpty + stage), parity);
    hopper::mbar_arrive_expect_tx(bars + 8 * (kKFull + stage), bytes);
    for (int pg = 0; pg < pages; ++pg) {
      for (int h = 0; h < L::kHalves; ++h) {
        tma_load_3d(base + L::kK + stage * L::kKvTile + h * L::kKvHalf + pg * kBoxBytes, tm_k,
                    bars + 8 * (kKFull + stage), h * 64, 0, page_head[pg]);
      }
    }
    mbar_wait(bars + 8 * (kVEmpty + stage), parity);
    hopper::mbar_arrive_expect_tx(bars + 8 * (kVFull + stage), bytes);
    for (int pg = 0; pg < pages; ++pg) {
      const bool last = t.page[pg] == b.seq_pages - 1;
      const CUtensorMap* map = tail && last ? tm_v_tail : tm_v;
      for (int h = 0; h < L::kHalves; ++h) {
        tma_load_3d(base + L::kV + stage * L::kKvTile + h * L::kKvHalf + pg * kBoxBytes, map,
                    bars + 8 * (kVFull + stage), h * 64, 0, page_head[pg]);
      }
    }
  }
}

// Varlen: after the V tile arrives each consumer warpgroup zeroes the chunk's last page's slots
// past kv_len (prefill_attention_varlen.cuh). Both warpgroups write the same zeros; the producer refills the stage only after
// both have released it.
template <int D>
__device__ __forceinline__ void zero_v_tail(uint32_t v_smem, const Tile& t, const BlockInfo& b,
                                            int kv_len, int tid, int warpgroup) {
  using L = Layout<D>;
  const int valid = kv_len % kPageSize;
  int slot = -1;
#pragma unroll
  for (int pg = 0; pg < kPagesPerTile; ++pg) {
    if (t.page[pg] == b.seq_pages - 1) slot = pg;
  }
  if (slot < 0) return;
  zero_v_slot_tail<L::kHalves>(v_smem, slot * kBoxBytes, L::kKvHalf, valid, tid);
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
  asm volatile("bar.sync %0, 128;\n" ::"r"(1 + warpgroup) : "memory");
}

template <int D>
__device__ __forceinline__ void pv_step(float (&o)[D / 8][4], const uint32_t (&a)[4],
                                        uint64_t desc) {
  if constexpr (D == 128) {
    wgmma_rs_m64n128k16(reinterpret_cast<float(&)[64]>(o), a, desc);
  } else {
    wgmma_rs_m64n64k16(reinterpret_cast<float(&)[32]>(o), a, desc);
  }
}

template <int D, Mode M>
__device__ void consume(const Params& p, const BlockInfo& b, uint32_t base, float* delta_buf,
                        int warpgroup) {
  using L = Layout<D>;
  const uint32_t bars = base + L::kBarriers;
  const int tid = threadIdx.x % 128;
  const int warp = tid / 32;
  const int lane = tid % 32;
  const int row_a = warpgroup * 64 + warp * 16 + lane / 4;
  RowPair rows = row_pair(p, b.row0, row_a, b.rows);
  const uint32_t q_smem = base + L::kQ + warpgroup * L::kQWarpgroup;

  float o[D / 8][4];
#pragma unroll
  for (int j = 0; j < D / 8; ++j) {
#pragma unroll
    for (int e = 0; e < 4; ++e) o[j][e] = 0.0f;
  }
  mbar_wait(bars + 8 * kQFull, 0);

  for (int it = 0; it < b.n_iter; ++it) {
    const int stage = it % kStages;
    const uint32_t parity = (it / kStages) & 1;
    const Tile t = tile_at<M>(p, b, it);
    const uint32_t k_smem = base + L::kK + stage * L::kKvTile;
    const uint32_t v_smem = base + L::kV + stage * L::kKvTile;

    float s[kBlockN / 8][4];
    mbar_wait(bars + 8 * (kKFull + stage), parity);
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
      const uint32_t k_off = (kk % 4) * 32;  // 16 columns = 32 bytes into the swizzled row
      const uint64_t desc_q = wgmma_desc_sw128(q_smem + (kk / 4) * kBoxBytes + k_off, 16, 1024);
      const uint64_t desc_k = wgmma_desc_sw128(k_smem + (kk / 4) * L::kKvHalf + k_off, 16, 1024);
      wgmma_ss_m64n128k16(reinterpret_cast<float(&)[64]>(s), desc_q, desc_k, kk > 0 ? 1 : 0);
    }
    wgmma_commit();
    wgmma_wait<0>();
    if (tid == 0) mbar_arrive(bars + 8 * (kKEmpty + stage));

    if (t.masked) mask_tile<M == Mode::kSliding>(s, rows, t, p.window, p.sink, lane);
    online_softmax(s, o, rows, p.scale_log2);
    uint32_t a[kBlockN / 16][4];
#pragma unroll
    for (int kk = 0; kk < kBlockN / 16; ++kk) probs_as_a(a[kk], s, kk);

    // Only the pages that exist were loaded; the missing one's keys have P = 0 and are skipped.
    mbar_wait(bars + 8 * (kVFull + stage), parity);
    if (b.zero_v_tail) zero_v_tail<D>(v_smem, t, b, p.kv_len, tid, warpgroup);
    wgmma_fence();
    if (t.page[1] >= 0) {
#pragma unroll
      for (int kk = 0; kk < kBlockN / 16; ++kk) {
        pv_step<D>(o, a[kk], wgmma_desc_sw128(v_smem + kk * 16 * 128, L::kKvHalf, 1024));
      }
    } else {
#pragma unroll
      for (int kk = 0; kk < kPageSize / 16; ++kk) {
        pv_step<D>(o, a[kk], wgmma_desc_sw128(v_smem + kk * 16 * 128, L::kKvHalf, 1024));
      }
    }
    wgmma_commit();
    wgmma_wait<0>();
    if (tid == 0) mbar_arrive(bars + 8 * (kVEmpty + stage));
  }
  if (M != Mode::kDense && p.delta_dense != nullptr) {
    store_rows_delta(p, o, rows, b, row_a, warpgroup, lane, delta_buf, 1 + warpgroup);
  } else {
    store_rows(p, o, rows, b.row0, row_a, b.rows, b.head, lane);
  }
}

// kVarlen is compile-time so that the single-sequence kernels carry none of the chunk lookup.
template <int D, Mode M, bool kVarlen>
__global__ void __launch_bounds__(kThreads, 1)
    prefill_sm90_kernel(const __grid_constant__ CUtensorMap tm_q,
                        const __grid_constant__ CUtensorMap tm_k,
                        const __grid_constant__ CUtensorMap tm_v,
                        const __grid_constant__ CUtensorMap tm_v_tail, const Params launch,
                        const __grid_constant__ ChunkTable table) {
  extern __shared__ unsigned char smem_raw[];
  const uint32_t base = (smem_u32(smem_raw) + 1023u) & ~1023u;
  const uint32_t bars = base + Layout<D>::kBarriers;
  // A varlen block finds its chunk and sees the launch as that sequence's own prefill.
  Params p = launch;
  int qblock = static_cast<int>(gridDim.y) - 1 - static_cast<int>(blockIdx.y);  // long first
  int q_row = 0;
  if constexpr (kVarlen) resolve_chunk<D>(launch, table, p, qblock, q_row);
  const BlockInfo b = block_info<M>(p, qblock, q_row, kVarlen);
  const int warpgroup = threadIdx.x / 128;
  if (threadIdx.x == 0) {
    for (int i = 0; i < kBarrierCount; ++i) {
      const bool empty = i >= kKEmpty;
      mbar_init(bars + 8 * i, empty ? 2 : 1);  // empty: one arrival per consumer warpgroup
    }
    hopper::mbar_fence_init();
  }
  __syncthreads();
  if (warpgroup == 0) {
    hopper::setmaxnreg_dec<24>();
    if (threadIdx.x == 0) produce<D, M>(&tm_q, &tm_k, &tm_v, &tm_v_tail, p, b, base);
  } else {
    hopper::setmaxnreg_inc<240>();
    float* delta_buf = reinterpret_cast<float*>(
        smem_raw + (base - smem_u32(smem_raw)) + Layout<D>::kQ +
        static_cast<uint32_t>(warpgroup - 1) * Layout<D>::kQWarpgroup);
    consume<D, M>(p, b, base, delta_buf, warpgroup - 1);
  }
}


// Single-sequence launches: grid (heads, query blocks); varlen: (heads, blocks of all chunks).
template <int D, Mode M, bool kVarlen = false>
cudaError_t launch_sm90_d(const Params& p, int num_pages, cudaStream_t stream,
                          const ChunkTable* varlen = nullptr, int varlen_blocks = 0,
                          int varlen_rows = 0) {
  CUtensorMap tm_q, tm_k, tm_v, tm_v_tail;
  const uint64_t row_bytes = D * 2;
  const uint64_t page_heads = static_cast<uint64_t>(num_pages) * p.n_kv_heads;
  const uint64_t tail = static_cast<uint64_t>(p.kv_len % kPageSize);
  const bool ok =
      hopper::encode_bf16_map_sw128(&tm_q, p.q, D, p.n_heads, varlen != nullptr ? varlen_rows : p.n_q, row_bytes,
                 row_bytes * p.n_heads, 1, 64) &&
      hopper::encode_bf16_map_sw128(&tm_k, p.k_pool, D, kPageSize, page_heads, row_bytes, row_bytes * kPageSize, 64,
                 1) &&
      hopper::encode_bf16_map_sw128(&tm_v, p.v_pool, D, kPageSize, page_heads, row_bytes, row_bytes * kPageSize, 64,
                 1) &&
      hopper::encode_bf16_map_sw128(&tm_v_tail, p.v_pool, D, tail == 0 ? kPageSize : tail, page_heads, row_bytes,
                 row_bytes * kPageSize, 64, 1);
  if (!ok) return cudaErrorInvalidValue;
  constexpr int kSmem = Layout<D>::kBytes;
  cudaError_t err = cudaFuncSetAttribute(prefill_sm90_kernel<D, M, kVarlen>,
                                         cudaFuncAttributeMaxDynamicSharedMemorySize, kSmem);
  if (err != cudaSuccess) return err;
  static const ChunkTable kNoChunks{};
  const int blocks = varlen != nullptr ? varlen_blocks : (p.n_q + kBlockM - 1) / kBlockM;
  const dim3 grid(static_cast<unsigned>(p.n_heads), static_cast<unsigned>(blocks));
  prefill_sm90_kernel<D, M, kVarlen><<<grid, kThreads, kSmem, stream>>>(tm_q, tm_k, tm_v, tm_v_tail, p,
                                                               varlen != nullptr ? *varlen : kNoChunks);
  return cudaGetLastError();
}

}  // namespace

cudaError_t launch_sm90_varlen(const Params& p, const ChunkTable& table, int n_blocks, int head_dim,
                               int num_pages, cudaStream_t stream) {
  int total_rows = 0;  // the packed q's extent for the Q tensor map
  for (int c = 0; c < table.count; ++c) total_rows = max(total_rows, table.chunk[c].q_row + table.chunk[c].n_q);
  if (p.window > 0) {
    return head_dim == 64
               ? launch_sm90_d<64, Mode::kSliding, true>(p, num_pages, stream, &table, n_blocks, total_rows)
               : launch_sm90_d<128, Mode::kSliding, true>(p, num_pages, stream, &table, n_blocks, total_rows);
  }
  return head_dim == 64 ? launch_sm90_d<64, Mode::kDense, true>(p, num_pages, stream, &table, n_blocks, total_rows)
                        : launch_sm90_d<128, Mode::kDense, true>(p, num_pages, stream, &table, n_blocks, total_rows);
}

cudaError_t launch_sm90(const Params& p, int head_dim, int num_pages, cudaStream_t stream) {
  return head_dim == 64 ? launch_sm90_d<64, Mode::kDense>(p, num_pages, stream)
                        : launch_sm90_d<128, Mode::kDense>(p, num_pages, stream);
}

cudaError_t launch_sm90_sliding(const Params& p, int head_dim, int num_pages,
                                cudaStream_t stream) {
  return head_dim == 64 ? launch_sm90_d<64, Mode::kSliding>(p, num_pages, stream)
                        : launch_sm90_d<128, Mode::kSliding>(p, num_pages, stream);
}

cudaError_t launch_sm90_blocks(const Params& p, int head_dim, int num_pages,
                               cudaStream_t stream) {
  return head_dim == 64 ? launch_sm90_d<64, Mode::kBlocks>(p, num_pages, stream)
                        : launch_sm90_d<128, Mode::kBlocks>(p, num_pages, stream);
}

}  // namespace deltainfer::cuda::prefill
