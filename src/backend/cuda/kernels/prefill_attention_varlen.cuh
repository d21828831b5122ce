#pragma once
// What a varlen block of the Hopper prefill kernels (v3 and FA3-style) does differently from a
// single-sequence one: find its chunk in the launch's ChunkTable and see the launch as that
// sequence's own prefill, and zero its last page's V slots past the chunk's kv_len in shared
// memory (one tensor map cannot give every chunk's last page its own extent; 0 * NaN would
// poison P V).
#include "backend/cuda/kernels/prefill_attention_schedule.cuh"

namespace deltainfer::cuda::prefill {

// Resolves blockIdx.y into its chunk: p (a copy of `launch`) gets the chunk's rows, positions,
// lengths, page-table row, output rows and Δ rows; qblock its query block within the chunk (the
// chunk's blocks launch longest first); q_row the chunk's first row of the packed q.
template <int D>
__device__ __forceinline__ void resolve_chunk(const Params& launch, const ChunkTable& table, Params& p,
                                              int& qblock, int& q_row) {
  int c = 0;
  while (c + 1 < table.count && static_cast<int>(blockIdx.y) >= table.chunk[c + 1].block_begin) ++c;
  const ChunkEntry& chunk = table.chunk[c];
  const int n_qblocks = (chunk.n_q + kBlockM - 1) / kBlockM;
  qblock = n_qblocks - 1 - (static_cast<int>(blockIdx.y) - chunk.block_begin);  // long first
  q_row = chunk.q_row;
  p.q_pos = launch.q_pos != nullptr ? launch.q_pos + chunk.q_row : nullptr;
  p.delta_dense = launch.delta_dense != nullptr
                      ? launch.delta_dense + static_cast<int64_t>(chunk.delta_row) * launch.n_heads * D
                      : nullptr;
  p.n_q = chunk.n_q;
  p.first_pos = chunk.first_pos;
  p.kv_len = chunk.kv_len;
  p.page_table = launch.page_table + static_cast<int64_t>(chunk.page_row) * table.page_table_stride;
  p.out = launch.out + static_cast<int64_t>(chunk.q_row) * launch.n_heads * D;
  p.lse = launch.lse != nullptr ? launch.lse + static_cast<int64_t>(chunk.q_row) * launch.n_heads : nullptr;
}

// Zeroes slots [valid, 64) of the 64-key V slot at v_smem + slot_offset (128B-swizzled,
// [half][64 slots][64 columns], column halves half_stride bytes apart) with the 128 threads of a
// warpgroup (tid in [0, 128)).
// A swizzled row is still one whole 128-byte line, so the rows are plain 16-byte pieces. The
// caller fences (fence.proxy.async) and syncs its warpgroup before a wgmma reads the slot.
template <int kHalves>
__device__ __forceinline__ void zero_v_slot_tail(uint32_t v_smem, uint32_t slot_offset,
                                                 uint32_t half_stride, int valid, int tid) {
  const int pieces = (kPageSize - valid) * 8 * kHalves;
  for (int i = tid; i < pieces; i += 128) {
    const int half = i / ((kPageSize - valid) * 8);
    const int rest = i % ((kPageSize - valid) * 8);
    const uint32_t addr = v_smem + half * half_stride + slot_offset +
                          static_cast<uint32_t>(valid + rest / 8) * 128 + (rest % 8) * 16;
    asm volatile("st.shared.v4.u32 [%0], {%1, %1, %1, %1};\n" ::"r"(addr), "r"(0) : "memory");
  }
}

}  // namespace deltainfer::cuda::prefill
