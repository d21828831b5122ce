// FlashAttention-2 style prefill attention: 4 warps, 64 query rows per block (16 per warp),
// 64-key tiles (one KV page each), mma.sync m16n8k16 bf16 with f32 accumulators, ldmatrix from
// XOR-swizzled shared memory, cp.async double buffering of the K/V pages.
#include <cuda_bf16.h>

#include "backend/cuda/kernels/prefill_attention_launch.cuh"

namespace deltainfer::cuda::prefill {
namespace {

constexpr int kBlockM = 64;
constexpr int kBlockN = kPageSize;
constexpr int kThreads = 128;

template <int D>
constexpr int smem_bytes_sm80() {
  return (kBlockM * D + 4 * kBlockN * D) * static_cast<int>(sizeof(bf16));
}

// Element offset of 16-byte chunk `chunk` of row `row` in a [rows][D] tile; the XOR spreads the
// 8 rows one ldmatrix reads over all 32 banks.
template <int D>
__device__ __forceinline__ int swizzled(int row, int chunk) {
  return row * D + ((chunk ^ (row & 7)) << 3);
}

__device__ __forceinline__ void cp_async_16(void* smem, const void* gmem, bool valid) {
  const int bytes = valid ? 16 : 0;  // 0: zero-fill, nothing read
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_u32(smem)), "l"(gmem),
               "r"(bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

// Copies a [64][D] tile whose rows are `stride` elements apart; rows >= valid_rows become zero
// (keys past kv_len may hold anything, and 0 * NaN would poison the P.V product).
template <int D>
__device__ __forceinline__ void load_tile(bf16* smem, const bf16* gmem, int64_t stride,
                                          int valid_rows, int tid) {
  constexpr int kChunks = D / 8;
#pragma unroll
  for (int i = tid; i < 64 * kChunks; i += kThreads) {
    const int row = i / kChunks;
    const int chunk = i % kChunks;
    const bool valid = row < valid_rows;
    const bf16* src = valid ? gmem + row * stride + chunk * 8 : gmem;
    cp_async_16(smem + swizzled<D>(row, chunk), src, valid);
  }
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const bf16* addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_u32(addr)));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const bf16* addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_u32(addr)));
}

__device__ __forceinline__ void mma_bf16(float (&c)[4], const uint32_t (&a)[4], uint32_t b0,
                                         uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

template <int D>
__global__ void __launch_bounds__(kThreads) prefill_sm80_kernel(const Params p) {
  extern __shared__ __align__(128) unsigned char smem_raw[];
  bf16* s_q = reinterpret_cast<bf16*>(smem_raw);
  bf16* s_k = s_q + kBlockM * D;  // two buffers
  bf16* s_v = s_k + 2 * kBlockN * D;

  const int head = blockIdx.x;
  const int m_block = static_cast<int>(gridDim.y) - 1 - static_cast<int>(blockIdx.y);  // long first
  const int row0 = m_block * kBlockM;
  const int rows = min(kBlockM, p.n_q - row0);
  const int kv_head = head / p.group;
  const int tid = threadIdx.x;
  const int warp = tid / 32;
  const int lane = tid % 32;
  const KeyRange range = key_range(p, row0, rows, kBlockN);

  const int64_t q_stride = static_cast<int64_t>(p.n_heads) * D;
  const auto page_base = [&](const bf16* pool, int tile) {
    const int64_t page = p.page_table[tile];
    return pool + (page * p.n_kv_heads + kv_head) * kPageSize * D;
  };
  const auto load_kv = [&](int tile) {
    const int buf = tile & 1;
    const int valid = min(kBlockN, p.kv_len - tile * kBlockN);
    load_tile<D>(s_k + buf * kBlockN * D, page_base(p.k_pool, tile), D, valid, tid);
    load_tile<D>(s_v + buf * kBlockN * D, page_base(p.v_pool, tile), D, valid, tid);
  };

  load_tile<D>(s_q, p.q + row0 * q_stride + static_cast<int64_t>(head) * D, q_stride, rows, tid);
  load_kv(0);
  cp_async_commit();

  const int row_a = warp * 16 + lane / 4;
  RowPair row_state = row_pair(p, row0, row_a, rows);

  uint32_t q_frag[D / 16][4];
  float o_acc[D / 8][4];
#pragma unroll
  for (int j = 0; j < D / 8; ++j) {
#pragma unroll
    for (int e = 0; e < 4; ++e) o_acc[j][e] = 0.0f;
  }

  for (int tile = 0; tile < range.n_tiles; ++tile) {
    if (tile + 1 < range.n_tiles) load_kv(tile + 1);
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();
    if (tile == 0) {
#pragma unroll
      for (int kk = 0; kk < D / 16; ++kk) {
        ldmatrix_x4(q_frag[kk], s_q + swizzled<D>(warp * 16 + lane % 16, 2 * kk + lane / 16));
      }
    }
    const bf16* k_tile = s_k + (tile & 1) * kBlockN * D;
    const bf16* v_tile = s_v + (tile & 1) * kBlockN * D;

    float s[kBlockN / 8][4];
#pragma unroll
    for (int j = 0; j < kBlockN / 8; ++j) {
#pragma unroll
      for (int e = 0; e < 4; ++e) s[j][e] = 0.0f;
    }
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
#pragma unroll
      for (int np = 0; np < kBlockN / 16; ++np) {
        uint32_t b[4];
        ldmatrix_x4(b, k_tile + swizzled<D>(np * 16 + lane % 8 + (lane / 16) * 8,
                                            2 * kk + (lane / 8) % 2));
        mma_bf16(s[2 * np], q_frag[kk], b[0], b[1]);
        mma_bf16(s[2 * np + 1], q_frag[kk], b[2], b[3]);
      }
    }
    if (tile >= range.n_unmasked) mask_scores(s, row_state, tile * kBlockN, lane);
    online_softmax(s, o_acc, row_state, p.scale_log2);

    // O += P V, P taken straight from the score accumulators as the A operand.
#pragma unroll
    for (int kk = 0; kk < kBlockN / 16; ++kk) {
      uint32_t a[4];
      probs_as_a(a, s, kk);
#pragma unroll
      for (int dp = 0; dp < D / 16; ++dp) {
        uint32_t b[4];
        ldmatrix_x4_trans(b, v_tile + swizzled<D>(kk * 16 + lane % 8 + ((lane / 8) % 2) * 8,
                                                  2 * dp + lane / 16));
        mma_bf16(o_acc[2 * dp], a, b[0], b[1]);
        mma_bf16(o_acc[2 * dp + 1], a, b[2], b[3]);
      }
    }
    __syncthreads();  // this buffer is refilled by the next iteration's prefetch
  }
  store_rows(p, o_acc, row_state, row0, row_a, rows, head, lane);
}

template <int D>
cudaError_t launch_sm80_d(const Params& p, cudaStream_t stream) {
  constexpr int kSmem = smem_bytes_sm80<D>();
  cudaError_t err = cudaFuncSetAttribute(prefill_sm80_kernel<D>,
                                         cudaFuncAttributeMaxDynamicSharedMemorySize, kSmem);
  if (err != cudaSuccess) return err;
  const dim3 grid(static_cast<unsigned>(p.n_heads),
                  static_cast<unsigned>((p.n_q + kBlockM - 1) / kBlockM));
  prefill_sm80_kernel<D><<<grid, kThreads, kSmem, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace

cudaError_t launch_sm80(const Params& p, int head_dim, cudaStream_t stream) {
  return head_dim == 64 ? launch_sm80_d<64>(p, stream) : launch_sm80_d<128>(p, stream);
}

}  // namespace deltainfer::cuda::prefill
