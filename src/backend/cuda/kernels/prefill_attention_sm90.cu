// Hopper prefill attention, FlashAttention-3 style: a producer warp issues TMA loads of the Q
// tile and of K/V tiles (two 64-key pages each) into a two-stage shared-memory ring guarded by
// mbarriers; two consumer warpgroups (64 query rows each) run S = Q K^T with wgmma from shared
// memory, the online softmax in registers, and O += P V with P from registers (wgmma RS).
#include <cuda.h>
#include <cudaTypedefs.h>

#include "backend/cuda/kernels/prefill_attention_launch.cuh"
#include "backend/cuda/kernels/prefill_attention_wgmma.cuh"

namespace deltainfer::cuda::prefill {
namespace {

constexpr int kBlockM = 128;  // two consumer warpgroups x 64 rows
constexpr int kPagesPerTile = 2;
constexpr int kBlockN = kPagesPerTile * kPageSize;
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

__device__ __forceinline__ void mbar_init(uint32_t bar, uint32_t count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count));
}
__device__ __forceinline__ void mbar_expect_tx(uint32_t bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes)
               : "memory");
}
__device__ __forceinline__ void mbar_arrive(uint32_t bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}
__device__ __forceinline__ void mbar_wait(uint32_t bar, uint32_t parity) {
  asm volatile(
      "{\n.reg .pred done;\nWAIT:\n"
      "mbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n"
      "@!done bra WAIT;\n}\n" ::"r"(bar),
      "r"(parity)
      : "memory");
}

__device__ __forceinline__ void tma_load_3d(uint32_t dst, const CUtensorMap* map, uint32_t bar,
                                            int c0, int c1, int c2) {
  asm volatile(
      "cp.async.bulk.tensor.3d.shared::cluster.global.mbarrier::complete_tx::bytes"
      " [%0], [%1, {%3, %4, %5}], [%2];\n" ::"r"(dst),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(bar), "r"(c0), "r"(c1), "r"(c2)
      : "memory");
}

struct BlockInfo {
  int head;
  int kv_head;
  int row0;
  int rows;
  KeyRange range;
  int seq_pages;
};

__device__ __forceinline__ BlockInfo block_info(const Params& p) {
  BlockInfo b;
  b.head = blockIdx.x;
  b.kv_head = b.head / p.group;
  b.row0 = (static_cast<int>(gridDim.y) - 1 - static_cast<int>(blockIdx.y)) * kBlockM;  // long first
  b.rows = min(kBlockM, p.n_q - b.row0);
  b.range = key_range(p, b.row0, b.rows, kBlockN);
  b.seq_pages = (p.kv_len + kPageSize - 1) / kPageSize;
  return b;
}

__device__ __forceinline__ int pages_in_tile(const BlockInfo& b, int tile) {
  return min(kPagesPerTile, b.seq_pages - tile * kPagesPerTile);
}

// One thread: Q once, then K and V of every tile into the stage ring. The last page of the
// sequence goes through the tail map of V, whose slot extent is kv_len % 64, so the slots past
// kv_len arrive as zeros (0 * garbage could be NaN in P.V; K garbage is masked to -inf).
template <int D>
__device__ void produce(const CUtensorMap* tm_q, const CUtensorMap* tm_k, const CUtensorMap* tm_v,
                        const CUtensorMap* tm_v_tail, const Params& p, const BlockInfo& b,
                        uint32_t base) {
  using L = Layout<D>;
  const uint32_t bars = base + L::kBarriers;
  const int q_warpgroups = (b.rows + 63) / 64;
  mbar_expect_tx(bars + 8 * kQFull, q_warpgroups * L::kQWarpgroup);
  for (int wg = 0; wg < q_warpgroups; ++wg) {
    for (int h = 0; h < L::kHalves; ++h) {
      tma_load_3d(base + L::kQ + wg * L::kQWarpgroup + h * kBoxBytes, tm_q, bars + 8 * kQFull,
                  h * 64, b.head, b.row0 + wg * 64);
    }
  }
  const bool tail = p.kv_len % kPageSize != 0;
  for (int tile = 0; tile < b.range.n_tiles; ++tile) {
    const int stage = tile % kStages;
    const uint32_t parity = ((tile / kStages) & 1) ^ 1;
    const int pages = pages_in_tile(b, tile);
    const uint32_t bytes = static_cast<uint32_t>(pages * L::kHalves) * kBoxBytes;
    int page_head[kPagesPerTile];
    for (int pg = 0; pg < pages; ++pg) {
      page_head[pg] = p.page_table[tile * kPagesPerTile + pg] * p.n_kv_heads + b.kv_head;
    }
    mbar_wait(bars + 8 * (kKEmpty + stage), parity);
    mbar_expect_tx(bars + 8 * (kKFull + stage), bytes);
    for (int pg = 0; pg < pages; ++pg) {
      for (int h = 0; h < L::kHalves; ++h) {
        tma_load_3d(base + L::kK + stage * L::kKvTile + h * L::kKvHalf + pg * kBoxBytes, tm_k,
                    bars + 8 * (kKFull + stage), h * 64, 0, page_head[pg]);
      }
    }
    mbar_wait(bars + 8 * (kVEmpty + stage), parity);
    mbar_expect_tx(bars + 8 * (kVFull + stage), bytes);
    for (int pg = 0; pg < pages; ++pg) {
      const bool last = tile * kPagesPerTile + pg == b.seq_pages - 1;
      const CUtensorMap* map = tail && last ? tm_v_tail : tm_v;
      for (int h = 0; h < L::kHalves; ++h) {
        tma_load_3d(base + L::kV + stage * L::kKvTile + h * L::kKvHalf + pg * kBoxBytes, map,
                    bars + 8 * (kVFull + stage), h * 64, 0, page_head[pg]);
      }
    }
  }
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

template <int D>
__device__ void consume(const Params& p, const BlockInfo& b, uint32_t base, int warpgroup) {
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

  for (int tile = 0; tile < b.range.n_tiles; ++tile) {
    const int stage = tile % kStages;
    const uint32_t parity = (tile / kStages) & 1;
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

    if (tile >= b.range.n_unmasked) mask_scores(s, rows, tile * kBlockN, lane);
    online_softmax(s, o, rows, p.scale_log2);
    uint32_t a[kBlockN / 16][4];
#pragma unroll
    for (int kk = 0; kk < kBlockN / 16; ++kk) probs_as_a(a[kk], s, kk);

    // Only the pages that exist were loaded; the missing one's keys have P = 0 and are skipped.
    mbar_wait(bars + 8 * (kVFull + stage), parity);
    wgmma_fence();
    if (pages_in_tile(b, tile) == kPagesPerTile) {
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
  store_rows(p, o, rows, b.row0, row_a, b.rows, b.head, lane);
}

template <int D>
__global__ void __launch_bounds__(kThreads, 1)
    prefill_sm90_kernel(const __grid_constant__ CUtensorMap tm_q,
                        const __grid_constant__ CUtensorMap tm_k,
                        const __grid_constant__ CUtensorMap tm_v,
                        const __grid_constant__ CUtensorMap tm_v_tail, const Params p) {
  extern __shared__ unsigned char smem_raw[];
  const uint32_t base = (smem_u32(smem_raw) + 1023u) & ~1023u;
  const uint32_t bars = base + Layout<D>::kBarriers;
  const BlockInfo b = block_info(p);
  const int warpgroup = threadIdx.x / 128;
  if (threadIdx.x == 0) {
    for (int i = 0; i < kBarrierCount; ++i) {
      const bool empty = i >= kKEmpty;
      mbar_init(bars + 8 * i, empty ? 2 : 1);  // empty: one arrival per consumer warpgroup
    }
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  __syncthreads();
  if (warpgroup == 0) {
    asm volatile("setmaxnreg.dec.sync.aligned.u32 24;\n");
    if (threadIdx.x == 0) produce<D>(&tm_q, &tm_k, &tm_v, &tm_v_tail, p, b, base);
  } else {
    asm volatile("setmaxnreg.inc.sync.aligned.u32 240;\n");
    consume<D>(p, b, base, warpgroup - 1);
  }
}

// cuTensorMapEncodeTiled through the runtime's driver entry point (no link against libcuda).
PFN_cuTensorMapEncodeTiled_v12000 tensor_map_encoder() {
  static PFN_cuTensorMapEncodeTiled_v12000 encode = [] {
    void* fn = nullptr;
    cudaDriverEntryPointQueryResult result{};
    if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &fn, 12000, cudaEnableDefault,
                                         &result) != cudaSuccess ||
        result != cudaDriverEntryPointSuccess) {
      fn = nullptr;
    }
    return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(fn);
  }();
  return encode;
}

// A 3-D bf16 map [outer][middle][inner] with a box of 64 inner x box_middle x box_outer, 128B
// swizzle; reads outside the extents fill zeros.
bool encode_map(CUtensorMap* map, const void* base, uint64_t inner, uint64_t middle,
                uint64_t outer, uint64_t middle_stride_bytes, uint64_t outer_stride_bytes,
                uint32_t box_middle, uint32_t box_outer) {
  const PFN_cuTensorMapEncodeTiled_v12000 encode = tensor_map_encoder();
  if (encode == nullptr) return false;
  const cuuint64_t dims[3] = {inner, middle, outer};
  const cuuint64_t strides[2] = {middle_stride_bytes, outer_stride_bytes};
  const cuuint32_t box[3] = {64, box_middle, box_outer};
  const cuuint32_t elem_strides[3] = {1, 1, 1};
  return encode(map, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 3, const_cast<void*>(base), dims, strides,
                box, elem_strides, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}

template <int D>
cudaError_t launch_sm90_d(const Params& p, int num_pages, cudaStream_t stream) {
  CUtensorMap tm_q, tm_k, tm_v, tm_v_tail;
  const uint64_t row_bytes = D * 2;
  const uint64_t page_heads = static_cast<uint64_t>(num_pages) * p.n_kv_heads;
  const uint64_t tail = static_cast<uint64_t>(p.kv_len % kPageSize);
  const bool ok =
      encode_map(&tm_q, p.q, D, p.n_heads, p.n_q, row_bytes, row_bytes * p.n_heads, 1, 64) &&
      encode_map(&tm_k, p.k_pool, D, kPageSize, page_heads, row_bytes, row_bytes * kPageSize, 64,
                 1) &&
      encode_map(&tm_v, p.v_pool, D, kPageSize, page_heads, row_bytes, row_bytes * kPageSize, 64,
                 1) &&
      encode_map(&tm_v_tail, p.v_pool, D, tail == 0 ? kPageSize : tail, page_heads, row_bytes,
                 row_bytes * kPageSize, 64, 1);
  if (!ok) return cudaErrorInvalidValue;
  constexpr int kSmem = Layout<D>::kBytes;
  cudaError_t err = cudaFuncSetAttribute(prefill_sm90_kernel<D>,
                                         cudaFuncAttributeMaxDynamicSharedMemorySize, kSmem);
  if (err != cudaSuccess) return err;
  const dim3 grid(static_cast<unsigned>(p.n_heads),
                  static_cast<unsigned>((p.n_q + kBlockM - 1) / kBlockM));
  prefill_sm90_kernel<D><<<grid, kThreads, kSmem, stream>>>(tm_q, tm_k, tm_v, tm_v_tail, p);
  return cudaGetLastError();
}

}  // namespace

cudaError_t launch_sm90(const Params& p, int head_dim, int num_pages, cudaStream_t stream) {
  return head_dim == 64 ? launch_sm90_d<64>(p, num_pages, stream)
                        : launch_sm90_d<128>(p, num_pages, stream);
}

}  // namespace deltainfer::cuda::prefill
