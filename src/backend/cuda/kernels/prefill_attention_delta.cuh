#pragma once
// The fused delta-correction epilogue of the Hopper sparse prefill kernels (v3 and FA3-style):
// stores a query block's rows as o^s + (o^d - o^s) of their gamma-group's strided row.
#include "backend/cuda/kernels/prefill_attention_schedule.cuh"

namespace deltainfer::cuda::prefill {

// Epilogue of the fused delta correction (METHODS.md section 1): row i gets
// o^s_i + (o^d_r - o^s_r), r = gamma * floor(i / gamma); rows r get o^d_r. gamma divides 64, so
// each group lies inside one consumer warpgroup: the threads holding row r put delta_r into
// this warpgroup's (now idle) Q shared memory, a named barrier, then every row adds its delta.
// warpgroup: the consumer index (rows [64 warpgroup, 64 warpgroup + 64) of the block); barrier:
// a named-barrier id this warpgroup's 128 threads own at this point (no other use in flight);
// delta_buf: (64 / gamma) x D floats of shared memory no async operation still reads or writes.
template <int NO>
__device__ void store_rows_delta(const Params& p, const float (&o)[NO][4], RowPair& rows,
                                 const BlockInfo& b, int row_a, int warpgroup, int lane,
                                 float* delta_buf, int barrier) {
  constexpr int D = NO * 8;
  const int64_t row_stride = static_cast<int64_t>(p.n_heads) * D;
  float inv[2];
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    rows.sum[r] += __shfl_xor_sync(0xffffffffu, rows.sum[r], 1);
    rows.sum[r] += __shfl_xor_sync(0xffffffffu, rows.sum[r], 2);
    inv[r] = 1.0f / rows.sum[r];
  }
  const int col0 = 2 * (lane % 4);
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int row = row_a + 8 * r;
    if (row >= b.rows || row % p.gamma != 0) continue;
    const bf16* dense = p.delta_dense + ((b.row0 + row) / p.gamma) * row_stride +
                        static_cast<int64_t>(b.head) * D + col0;
    float* delta = delta_buf + ((row - warpgroup * 64) / p.gamma) * D + col0;
#pragma unroll
    for (int j = 0; j < NO; ++j) {
      const __nv_bfloat162 d2 = *reinterpret_cast<const __nv_bfloat162*>(dense + j * 8);
      delta[j * 8] = __low2float(d2) - o[j][2 * r] * inv[r];
      delta[j * 8 + 1] = __high2float(d2) - o[j][2 * r + 1] * inv[r];
    }
  }
  asm volatile("bar.sync %0, 128;\n" ::"r"(barrier) : "memory");
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int row = row_a + 8 * r;
    if (row >= b.rows) continue;
    const float* delta = delta_buf + ((row - warpgroup * 64) / p.gamma) * D + col0;
    bf16* out = p.out + (b.row0 + row) * row_stride + static_cast<int64_t>(b.head) * D + col0;
#pragma unroll
    for (int j = 0; j < NO; ++j) {
      // Rows r: o^s_r * inv + (o^d_r - o^s_r * inv) is o^d_r up to one f32 rounding, which the
      // bf16 store removes.
      const float x0 = o[j][2 * r] * inv[r] + delta[j * 8];
      const float x1 = o[j][2 * r + 1] * inv[r] + delta[j * 8 + 1];
      *reinterpret_cast<uint32_t*>(out + j * 8) = pack_bf16x2(x0, x1);
    }
    if (p.lse != nullptr && lane % 4 == 0) {
      constexpr float kLn2 = 0.69314718055994531f;
      p.lse[(b.row0 + row) * p.n_heads + b.head] = (rows.max[r] + log2f(rows.sum[r])) * kLn2;
    }
  }
}

}  // namespace deltainfer::cuda::prefill
