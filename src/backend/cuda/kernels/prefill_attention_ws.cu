// Hopper prefill attention on FlashAttention-3's recipe (PrefillKernel::kSm90Ws, what kAuto
// means on Hopper for every prefill entry point since 2026-12-02; see
// docs/notes/prefill-kernel.md, "FA3-style kernel"). Dense causal, sliding window + sink and
// block lists, with the fused delta epilogue on the sparse modes: the tile schedule, the masks
// and the epilogue are v3's (prefill_attention_schedule.cuh, prefill_attention_delta.cuh); the
// modes differ only in which key tiles a query block visits, never in the pipeline below.
//
// One CTA = one query head x 128 query rows, 384 threads in three warpgroups:
//   warpgroup 0  producer: setmaxnreg down to 24 registers; one thread issues the TMA loads of
//                the Q tile (each consumer's 64 rows on their own barrier) and of the K and V
//                tiles (128 keys = two 64-key pages, each page one TMA box per 64 columns,
//                looked up in the page table) into a kStages-deep ring; separate full/empty
//                mbarriers for K and V so that S = Q K^T can start before V has landed.
//   warpgroups 1, 2  consumers: setmaxnreg up to 240; each owns 64 query rows.
// Consumer loop, tile j (FA3's intra-warpgroup overlap): issue S_j = Q K_j^T (wgmma SS) and
// O += P_{j-1} V_{j-1} (wgmma RS, P from registers) back to back, wait for S_j only, run the
// masked online softmax of S_j while the P V GEMM still runs, then wait for it, rescale O and
// pack P_j. Across warpgroups (FA3's ping-pong) two named barriers hand the right to issue
// GEMMs back and forth, so one warpgroup's softmax runs under the other's GEMMs.
// Query blocks are launched longest first (the causal diagonal makes the last blocks the
// longest), which keeps the tail of the grid short. The tile list is the CTA's (block_info of
// its 128-row block): both consumers run the same tiles, a consumer without rows included, which
// the empty-barrier counts (one arrive per consumer) and the named-barrier hand-overs rely on.
//
// Paging: a key tile is two whole pages (kKvPageSize = 64, tile 128). K and V pools are
// viewed as a 3-D tensor [num_pages * n_kv_heads][64 slots][head_dim], a page's head a single
// coordinate, so each TMA box is one page's 64 slots x 64 columns. The last page of a
// sequence goes through a second V map whose slot extent is kv_len % 64, so its slots past
// kv_len arrive as zeros (0 * NaN would poison P V); K slots past kv_len are masked to -inf by
// a select. A tile with one page (its second lies past the sequence, or an odd block list's
// last tile) loads that page into both slots: finite data under P = 0 (the second slot's keys
// are masked: past kv_len, or an empty slot in mask_tile), so the consumer loop has no
// page-count branches.
#include <cuda.h>

#include "backend/cuda/kernels/hopper_pipeline.cuh"
#include "backend/cuda/kernels/hopper_tensor_map.cuh"
#include "backend/cuda/kernels/prefill_attention_delta.cuh"
#include "backend/cuda/kernels/prefill_attention_launch.cuh"
#include "backend/cuda/kernels/prefill_attention_schedule.cuh"
#include "backend/cuda/kernels/prefill_attention_varlen.cuh"
#include "backend/cuda/kernels/prefill_attention_wgmma.cuh"
#include "core/error.h"

namespace deltainfer::cuda::prefill {
namespace {

namespace hp = deltainfer::cuda::hopper;

constexpr int kConsumers = 2;
constexpr int kRowsPerConsumer = 64;  // a wgmma M
static_assert(kConsumers * kRowsPerConsumer == kBlockM, "the schedule's query block");
static_assert(kBlockN == 128, "the S tile is one wgmma m64n128 per consumer");
constexpr int kThreads = 128 * (1 + kConsumers);
// setmaxnreg moves registers within the pool the launch reserved: __launch_bounds__(384, 1) gives
// every thread 168 (65536 / 384 rounded down to 8). A request past the pool blocks forever.
constexpr int kLaunchRegs = 65536 / kThreads / 8 * 8;
constexpr int kProducerRegs = 24;
constexpr int kConsumerRegs = 240;
static_assert(kProducerRegs * 128 + kConsumerRegs * 128 * kConsumers <= kLaunchRegs * kThreads,
              "setmaxnreg budget exceeds the launch's register pool");
constexpr uint32_t kBoxBytes = 64 * 64 * 2;  // one TMA box: 64 rows x 128 bytes, 128B swizzle
constexpr int kSchedBarrier = 1;             // named barriers 1, 2: consumer 0's and 1's turn
constexpr int kConsumerBarrier = 3;  // 3, 4: consumer 0's and 1's own (V-tail zeroing, delta epilogue)

// Shared memory (byte offsets from a 1024-aligned base). Tiles are column halves of 64
// elements, [half][rows][64], 128B-swizzled: K-major for Q and K, MN-major for V.
template <int D>
struct WsLayout {
  static constexpr int kStages = D == 128 ? 2 : 3;  // 160 KiB at d = 128 (three fit: 224 KiB)
  static constexpr int kHalves = D / 64;
  static constexpr uint32_t kQConsumer = kHalves * kBoxBytes;               // [half][64][64]
  static constexpr uint32_t kKvHalf = kPagesPerTile * kBoxBytes;            // [128][64]
  static constexpr uint32_t kKvTile = kHalves * kKvHalf;                    // [half][128][64]
  static constexpr uint32_t kQ = 0;
  static constexpr uint32_t kK = kQ + kConsumers * kQConsumer;
  static constexpr uint32_t kV = kK + kStages * kKvTile;
  static constexpr uint32_t kBarriers = kV + kStages * kKvTile;
  // mbarriers: Q full per consumer, then K full, V full, K empty, V empty per stage.
  static constexpr int kQFull = 0;
  static constexpr int kKFull = kQFull + kConsumers;
  static constexpr int kVFull = kKFull + kStages;
  static constexpr int kKEmpty = kVFull + kStages;
  static constexpr int kVEmpty = kKEmpty + kStages;
  static constexpr int kBarrierCount = kVEmpty + kStages;
  static constexpr int kBytes = static_cast<int>(kBarriers) + 8 * kBarrierCount + 1024;  // + align
  static_assert(kBytes <= 227 * 1024, "shared memory per CTA on sm_90");
};

__device__ __forceinline__ uint32_t barrier_at(uint32_t bars, int index) {
  return bars + 8u * static_cast<uint32_t>(index);
}

// Producer (one thread): Q once, then K and V of every tile into the ring. Stage s's n-th fill
// waits for the n-th completion of its empty barrier (both consumers released it); the first
// round passes at once (parity 1 of a fresh barrier).
template <int D, Mode M>
__device__ void produce(const CUtensorMap* tm_q, const CUtensorMap* tm_k, const CUtensorMap* tm_v,
                        const CUtensorMap* tm_v_tail, const Params& p, const BlockInfo& b,
                        uint32_t base) {
  using L = WsLayout<D>;
  const uint32_t bars = base + L::kBarriers;
  hp::tma_prefetch_map(tm_q);
  hp::tma_prefetch_map(tm_k);
  hp::tma_prefetch_map(tm_v);
  hp::tma_prefetch_map(tm_v_tail);
  // Rows past n_q are outside the Q map and arrive as zeros: finite scores nobody stores. A
  // consumer with no rows at all (a last block of <= 64 rows) loads the block's last row and
  // the zeros after it instead of a box wholly outside the map, so every box the kernel issues
  // overlaps its tensor (the case partial boxes are documented for).
  for (int c = 0; c < kConsumers; ++c) {
    const uint32_t full = barrier_at(bars, L::kQFull + c);
    const int row = b.q_row + min(b.row0 + c * kRowsPerConsumer, p.n_q - 1);
    hp::mbar_arrive_expect_tx(full, L::kQConsumer);
    for (int h = 0; h < L::kHalves; ++h) {
      hp::tma_load_3d(base + L::kQ + c * L::kQConsumer + h * kBoxBytes, tm_q, full, h * 64, b.head,
                      row);
    }
  }
  // Varlen blocks zero their chunk's tail in shared memory instead (zero_v_tail_ws).
  const bool has_tail = !b.zero_v_tail && p.kv_len % kPageSize != 0;
  for (int it = 0; it < b.n_iter; ++it) {
    const int stage = it % L::kStages;
    const uint32_t empty_parity = ((it / L::kStages) & 1) ^ 1;
    // Page-head coordinates of the tile's two slots; an empty slot (-1) repeats slot 0.
    const Tile t = tile_at<M>(p, b, it);
    int page[kPagesPerTile];
    int page_head[kPagesPerTile];
    for (int pg = 0; pg < kPagesPerTile; ++pg) {
      page[pg] = t.page[pg] >= 0 ? t.page[pg] : t.page[0];
      page_head[pg] = p.page_table[page[pg]] * p.n_kv_heads + b.kv_head;
    }
    const uint32_t k_full = barrier_at(bars, L::kKFull + stage);
    hp::mbar_wait_or_trap(barrier_at(bars, L::kKEmpty + stage), empty_parity);
    hp::mbar_arrive_expect_tx(k_full, L::kKvTile);
    for (int pg = 0; pg < kPagesPerTile; ++pg) {
      for (int h = 0; h < L::kHalves; ++h) {
        hp::tma_load_3d(base + L::kK + stage * L::kKvTile + h * L::kKvHalf + pg * kBoxBytes, tm_k,
                        k_full, h * 64, 0, page_head[pg]);
      }
    }
    const uint32_t v_full = barrier_at(bars, L::kVFull + stage);
    hp::mbar_wait_or_trap(barrier_at(bars, L::kVEmpty + stage), empty_parity);
    hp::mbar_arrive_expect_tx(v_full, L::kKvTile);
    for (int pg = 0; pg < kPagesPerTile; ++pg) {
      for (int h = 0; h < L::kHalves; ++h) {
        hp::tma_load_3d(base + L::kV + stage * L::kKvTile + h * L::kKvHalf + pg * kBoxBytes,
                        has_tail && page[pg] == b.seq_pages - 1 ? tm_v_tail : tm_v, v_full, h * 64,
                        0, page_head[pg]);
      }
    }
  }
}

// S[64 x 128] = Q[64 x D] K^T: D/16 wgmma SS steps. The descriptors advance by constants from
// their bases (16 columns = 32 bytes inside a swizzled line; 64 columns = the next half), so
// nothing but the wgmmas sits between the fence and the commit.
template <int D>
__device__ __forceinline__ void issue_qk(float (&s)[kBlockN / 8][4], uint64_t desc_q,
                                         uint64_t desc_k) {
  using L = WsLayout<D>;
  wgmma_fence();
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) {
    const uint64_t q_step = ((kk / 4) * kBoxBytes + (kk % 4) * 32) >> 4;
    const uint64_t k_step = ((kk / 4) * L::kKvHalf + (kk % 4) * 32) >> 4;
    wgmma_ss_m64n128k16(reinterpret_cast<float(&)[64]>(s), desc_q + q_step, desc_k + k_step,
                        kk > 0 ? 1 : 0);
  }
  wgmma_commit();
}

// O[64 x D] += P[64 x 128] V[128 x D]: 8 wgmma RS steps of 16 keys (16 swizzled lines of V).
template <int D>
__device__ __forceinline__ void issue_pv(float (&o)[D / 8][4], const uint32_t (&pa)[kBlockN / 16][4],
                                         uint64_t desc_v) {
  wgmma_fence();
#pragma unroll
  for (int kk = 0; kk < kBlockN / 16; ++kk) {
    const uint64_t v_step = (kk * 16 * 128) >> 4;
    if constexpr (D == 128) {
      wgmma_rs_m64n128k16(reinterpret_cast<float(&)[64]>(o), pa[kk], desc_v + v_step);
    } else {
      wgmma_rs_m64n64k16(reinterpret_cast<float(&)[32]>(o), pa[kk], desc_v + v_step);
    }
  }
  wgmma_commit();
}

// ptxas schedules a wgmma wait as early as its basic block allows: with the softmax and the
// wait for P V in one block it hoisted the wait above all the exp2s (CUDA 13.0 SASS), which
// serializes the softmax behind the GEMM again. A branch on a value that depends on every exp2
// (the row sums; never taken: they are finite and positive, and a NaN only sleeps 0 ns) closes
// the block, so the wait stays after the softmax.
__device__ __forceinline__ void end_basic_block(float computed_last) {
  if (__float_as_uint(computed_last) == 0xFFFFFFFFu) asm volatile("nanosleep.u32 0;\n");
}

// Ping-pong between the consumers: wait for this warpgroup's turn to issue GEMMs, and hand the
// turn to the other one. Consumer 1 opens consumer 0's first turn and skips its own last
// hand-over, so both barriers see as many arrivals as waits (n_iter each).
__device__ __forceinline__ void await_turn(int consumer) {
  hp::bar_sync(kSchedBarrier + consumer, 2 * 128);
}
__device__ __forceinline__ void pass_turn(int consumer, bool last) {
  if (!(consumer == 1 && last)) hp::bar_arrive(kSchedBarrier + (consumer ^ 1), 2 * 128);
}

// Masks tile `it`'s scores: dense by the causal range (tiles from n_unmasked on, keys past each
// row's limit), the sparse modes by the tile's own test and v3's boundary mask (causal, window and
// sink, and an empty slot's keys). t: tile_at<M>(it), looked up before the GEMMs were issued so
// that a block list's global read is not on the softmax's path; dense does not read it.
template <Mode M, int NS>
__device__ __forceinline__ void mask_tile_ws(float (&s)[NS][4], const Params& p, const BlockInfo& b,
                                             const RowPair& rows, const Tile& t, int it, int lane) {
  if constexpr (M == Mode::kDense) {
    if (it >= b.n_unmasked) mask_scores(s, rows, it * kBlockN, lane);
  } else {
    if (t.masked) mask_tile<M == Mode::kSliding>(s, rows, t, p.window, p.sink, lane);
  }
}

// Normalizes and stores the consumer's rows; the sparse modes apply the fused delta correction
// when p.delta_dense is set, on a named barrier of this consumer's own (not the ping-pong's).
template <int D, Mode M>
__device__ __forceinline__ void store_block(const Params& p, const float (&o)[D / 8][4],
                                            RowPair& rows, const BlockInfo& b, int row_a,
                                            int consumer, int lane, float* delta_buf) {
  if constexpr (M != Mode::kDense) {
    if (p.delta_dense != nullptr) {
      store_rows_delta(p, o, rows, b, row_a, consumer, lane, delta_buf,
                       kConsumerBarrier + consumer);
      return;
    }
  }
  store_rows(p, o, rows, b.row0, row_a, b.rows, b.head, lane);
}

// Varlen (b.zero_v_tail): once tile t's V has landed in stage v_stage, zero the slots past the
// chunk's kv_len of its last page, in every slot that holds it (a one-page tile repeats it in
// slot 1), fence them for wgmma and sync this consumer. Runs before the consumer's GEMM turn so
// that the turn stays as short as in the single-sequence kernel. Both consumers write the same
// zeros; the producer refills the stage only after both have released it.
template <int D>
__device__ __forceinline__ void zero_v_tail_ws(uint32_t v_stage, const Tile& t, const BlockInfo& b,
                                               int kv_len, int tid, int consumer) {
  using L = WsLayout<D>;
  const int last = b.seq_pages - 1;
  const bool slot0 = t.page[0] == last;
  const bool slot1 = (t.page[1] >= 0 ? t.page[1] : t.page[0]) == last;
  if (!slot0 && !slot1) return;
  const int valid = kv_len % kPageSize;
  if (slot0) zero_v_slot_tail<L::kHalves>(v_stage, 0, L::kKvHalf, valid, tid);
  if (slot1) zero_v_slot_tail<L::kHalves>(v_stage, kBoxBytes, L::kKvHalf, valid, tid);
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
  hp::bar_sync(kConsumerBarrier + consumer, 128);
}

// delta_buf: this consumer's Q tile as floats (idle once its last S GEMM has completed).
template <int D, Mode M, bool kVarlen>
__device__ void consume(const Params& p, const BlockInfo& b, uint32_t base,
                        [[maybe_unused]] float* delta_buf, int consumer) {
  using L = WsLayout<D>;
  const uint32_t bars = base + L::kBarriers;
  const int tid = static_cast<int>(threadIdx.x) % 128;
  const int lane = tid % 32;
  const int row_a = consumer * kRowsPerConsumer + (tid / 32) * 16 + lane / 4;
  RowPair rows = row_pair(p, b.row0, row_a, b.rows);

  const uint64_t desc_q = wgmma_desc_sw128(base + L::kQ + consumer * L::kQConsumer, 16, 1024);
  const uint64_t desc_k0 = wgmma_desc_sw128(base + L::kK, 16, 1024);
  const uint64_t desc_v0 = wgmma_desc_sw128(base + L::kV, L::kKvHalf, 1024);
  constexpr uint64_t kStageStep = L::kKvTile >> 4;

  float o[D / 8][4];
#pragma unroll
  for (int j = 0; j < D / 8; ++j) {
#pragma unroll
    for (int e = 0; e < 4; ++e) o[j][e] = 0.0f;
  }
  float s[kBlockN / 8][4];
  uint32_t pa[kBlockN / 16][4];
  float alpha[2];

  if constexpr (M == Mode::kBlocks) {
    // An empty block list (outside the contract: every row must see its diagonal block) has no
    // tiles; both consumers see it (the list is the CTA's) and skip every barrier. The rows
    // come out non-finite, as v3's do; the Q load must land before the CTA exits.
    if (b.n_iter == 0) {
      hp::mbar_wait(barrier_at(bars, L::kQFull + consumer), 0);
      store_block<D, M>(p, o, rows, b, row_a, consumer, lane, delta_buf);
      return;
    }
  }

  if (consumer == 1) hp::bar_arrive(kSchedBarrier, 2 * 128);  // consumer 0 goes first
  hp::mbar_wait(barrier_at(bars, L::kQFull + consumer), 0);

  // Tile 0: S only (there is no P V yet).
  const Tile t0 = tile_at<M>(p, b, 0);
  hp::mbar_wait(barrier_at(bars, L::kKFull), 0);
  await_turn(consumer);
  issue_qk<D>(s, desc_q, desc_k0);
  pass_turn(consumer, b.n_iter == 1);
  wgmma_wait<0>();
  if (tid == 0) hp::mbar_arrive(barrier_at(bars, L::kKEmpty));
  mask_tile_ws<M>(s, p, b, rows, t0, 0, lane);
  softmax_scores(s, rows, p.scale_log2, alpha);  // O is still 0: alpha unused
#pragma unroll
  for (int kk = 0; kk < kBlockN / 16; ++kk) probs_as_a(pa[kk], s, kk);

  Tile t_prev = t0;  // varlen: the tile whose V the next P V reads
  for (int it = 1; it < b.n_iter; ++it) {
    const Tile t = tile_at<M>(p, b, it);
    const int stage = it % L::kStages;
    const int prev = (it - 1) % L::kStages;
    const uint32_t parity = (it / L::kStages) & 1;
    const uint32_t prev_parity = ((it - 1) / L::kStages) & 1;
    if constexpr (kVarlen) {
      if (b.zero_v_tail) {
        hp::mbar_wait(barrier_at(bars, L::kVFull + prev), prev_parity);
        zero_v_tail_ws<D>(base + L::kV + prev * L::kKvTile, t_prev, b, p.kv_len, tid, consumer);
      }
      t_prev = t;
    }
    hp::mbar_wait(barrier_at(bars, L::kKFull + stage), parity);
    await_turn(consumer);
    issue_qk<D>(s, desc_q, desc_k0 + stage * kStageStep);
    hp::mbar_wait(barrier_at(bars, L::kVFull + prev), prev_parity);
    issue_pv<D>(o, pa, desc_v0 + prev * kStageStep);
    pass_turn(consumer, it == b.n_iter - 1);

    wgmma_wait<1>();  // S_it is in; P_{it-1} V_{it-1} may still run
    if (tid == 0) hp::mbar_arrive(barrier_at(bars, L::kKEmpty + stage));
    mask_tile_ws<M>(s, p, b, rows, t, it, lane);
    softmax_scores(s, rows, p.scale_log2, alpha);
    end_basic_block(rows.sum[0] + rows.sum[1]);
    wgmma_wait<0>();
    if (tid == 0) hp::mbar_arrive(barrier_at(bars, L::kVEmpty + prev));
    rescale_rows(o, alpha);
#pragma unroll
    for (int kk = 0; kk < kBlockN / 16; ++kk) probs_as_a(pa[kk], s, kk);
  }

  // The last tile's P V.
  const int last = (b.n_iter - 1) % L::kStages;
  hp::mbar_wait(barrier_at(bars, L::kVFull + last), ((b.n_iter - 1) / L::kStages) & 1);
  if constexpr (kVarlen) {
    if (b.zero_v_tail) {
      zero_v_tail_ws<D>(base + L::kV + last * L::kKvTile, t_prev, b, p.kv_len, tid, consumer);
    }
  }
  issue_pv<D>(o, pa, desc_v0 + last * kStageStep);
  wgmma_wait<0>();
  if (tid == 0) hp::mbar_arrive(barrier_at(bars, L::kVEmpty + last));
  store_block<D, M>(p, o, rows, b, row_a, consumer, lane, delta_buf);
}

// kVarlen is compile-time so that the single-sequence kernels carry none of the chunk lookup.
template <int D, Mode M, bool kVarlen>
__global__ void __launch_bounds__(kThreads, 1)
    prefill_ws_kernel(const __grid_constant__ CUtensorMap tm_q,
                      const __grid_constant__ CUtensorMap tm_k,
                      const __grid_constant__ CUtensorMap tm_v,
                      const __grid_constant__ CUtensorMap tm_v_tail, const Params launch,
                      const __grid_constant__ ChunkTable table) {
  using L = WsLayout<D>;
  extern __shared__ unsigned char smem_raw[];
  const uint32_t base = (smem_u32(smem_raw) + 1023u) & ~1023u;
  const uint32_t bars = base + L::kBarriers;
  // A varlen block finds its chunk and sees the launch as that sequence's own prefill.
  Params p = launch;
  int qblock = static_cast<int>(gridDim.y) - 1 - static_cast<int>(blockIdx.y);  // long first
  int q_row = 0;
  if constexpr (kVarlen) resolve_chunk<D>(launch, table, p, qblock, q_row);
  const BlockInfo b = block_info<M>(p, qblock, q_row, kVarlen);
  // Broadcast from lane 0 so that the compiler sees a warp-uniform value (setmaxnreg and the
  // wgmmas are warpgroup-collective).
  const int warpgroup = __shfl_sync(0xffffffffu, static_cast<int>(threadIdx.x) / 128, 0);
  if (threadIdx.x == 0) {
    for (int i = 0; i < L::kBarrierCount; ++i) {
      // Full barriers: the producer's one arrive (+ bytes); empty: one arrive per consumer.
      hp::mbar_init(barrier_at(bars, i), i >= L::kKEmpty ? kConsumers : 1);
    }
    hp::mbar_fence_init();
  }
  __syncthreads();
  if (warpgroup == 0) {
    hp::setmaxnreg_dec<kProducerRegs>();
    if (threadIdx.x == 0) produce<D, M>(&tm_q, &tm_k, &tm_v, &tm_v_tail, p, b, base);
  } else {
    hp::setmaxnreg_inc<kConsumerRegs>();
    const int consumer = warpgroup - 1;
    float* delta_buf = reinterpret_cast<float*>(smem_raw + (base - smem_u32(smem_raw)) + L::kQ +
                                                static_cast<uint32_t>(consumer) * L::kQConsumer);
    consume<D, M, kVarlen>(p, b, base, delta_buf, consumer);
  }
}

// Single-sequence launches: grid (heads, query blocks); varlen (table set): (heads, n_blocks of
// all chunks), the Q map over the packed q's q_rows rows.
template <int D, Mode M, bool kVarlen>
cudaError_t launch_ws_d(const Params& p, int num_pages, cudaStream_t stream,
                        const ChunkTable* table = nullptr, int n_blocks = 0, int q_rows = 0) {
  CUtensorMap tm_q, tm_k, tm_v, tm_v_tail;
  const uint64_t row_bytes = D * 2;
  const uint64_t page_heads = static_cast<uint64_t>(num_pages) * p.n_kv_heads;
  const uint64_t tail = static_cast<uint64_t>(p.kv_len % kPageSize);
  const bool ok =
      hp::encode_bf16_map_sw128(&tm_q, p.q, D, p.n_heads, kVarlen ? q_rows : p.n_q, row_bytes,
                                row_bytes * p.n_heads, 1, kRowsPerConsumer) &&
      hp::encode_bf16_map_sw128(&tm_k, p.k_pool, D, kPageSize, page_heads, row_bytes,
                                row_bytes * kPageSize, kPageSize, 1) &&
      hp::encode_bf16_map_sw128(&tm_v, p.v_pool, D, kPageSize, page_heads, row_bytes,
                                row_bytes * kPageSize, kPageSize, 1) &&
      hp::encode_bf16_map_sw128(&tm_v_tail, p.v_pool, D, tail == 0 ? kPageSize : tail, page_heads,
                                row_bytes, row_bytes * kPageSize, kPageSize, 1);
  if (!ok) return cudaErrorInvalidValue;
  constexpr int kSmem = WsLayout<D>::kBytes;
  const cudaError_t err = cudaFuncSetAttribute(prefill_ws_kernel<D, M, kVarlen>,
                                               cudaFuncAttributeMaxDynamicSharedMemorySize, kSmem);
  if (err != cudaSuccess) return err;
  static const ChunkTable kNoChunks{};
  const int blocks = kVarlen ? n_blocks : (p.n_q + kBlockM - 1) / kBlockM;
  const dim3 grid(static_cast<unsigned>(p.n_heads), static_cast<unsigned>(blocks));
  prefill_ws_kernel<D, M, kVarlen><<<grid, kThreads, kSmem, stream>>>(
      tm_q, tm_k, tm_v, tm_v_tail, p, kVarlen ? *table : kNoChunks);
  return cudaGetLastError();
}

template <Mode M, bool kVarlen = false>
cudaError_t launch_ws(const Params& p, int head_dim, int num_pages, cudaStream_t stream,
                      const ChunkTable* table = nullptr, int n_blocks = 0, int q_rows = 0) {
  if (!device_has_wgmma()) {
    throw_input_error("prefill attention: the sm90 warp-specialized kernel needs an sm_90 device");
  }
  if (head_dim != 64 && head_dim != 128) {
    throw_input_error("prefill attention: the sm90 warp-specialized kernel supports head dim 64 "
                      "or 128, not {}",
                      head_dim);
  }
  return head_dim == 64
             ? launch_ws_d<64, M, kVarlen>(p, num_pages, stream, table, n_blocks, q_rows)
             : launch_ws_d<128, M, kVarlen>(p, num_pages, stream, table, n_blocks, q_rows);
}

}  // namespace

cudaError_t launch_sm90_ws(const Params& p, int head_dim, int num_pages, cudaStream_t stream) {
  return launch_ws<Mode::kDense>(p, head_dim, num_pages, stream);
}

cudaError_t launch_sm90_ws_sliding(const Params& p, int head_dim, int num_pages,
                                   cudaStream_t stream) {
  return launch_ws<Mode::kSliding>(p, head_dim, num_pages, stream);
}

cudaError_t launch_sm90_ws_blocks(const Params& p, int head_dim, int num_pages,
                                  cudaStream_t stream) {
  return launch_ws<Mode::kBlocks>(p, head_dim, num_pages, stream);
}

cudaError_t launch_sm90_ws_varlen(const Params& p, const ChunkTable& table, int n_blocks,
                                  int head_dim, int num_pages, cudaStream_t stream) {
  int q_rows = 0;  // the packed q's extent for the Q tensor map
  for (int c = 0; c < table.count; ++c) {
    q_rows = max(q_rows, table.chunk[c].q_row + table.chunk[c].n_q);
  }
  return p.window > 0
             ? launch_ws<Mode::kSliding, true>(p, head_dim, num_pages, stream, &table, n_blocks, q_rows)
             : launch_ws<Mode::kDense, true>(p, head_dim, num_pages, stream, &table, n_blocks, q_rows);
}

}  // namespace deltainfer::cuda::prefill
