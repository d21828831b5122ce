#pragma once
// The paged KV append into FP8 pools (--kv-dtype fp8): quantizes a step's K and V rows into their
// pages, one block per (page run, KV head, K or V), following the page format of
// core/kv_fp8_page.h bit for bit (its CPU twin, fp8_append_positions, is what the GPU test
// compares against): the run's finite amax sets a power-of-two scale; a run that starts at row 0
// starts the page anew; a run whose amax outgrows the page's scale rescales the page's earlier
// rows; non-finite values are stored as NaN.
//
// Layouts (all device pointers):
//   k, v          [n_tokens][n_kv_heads][head_dim] bf16 (keys after RoPE)
//   runs          [n_runs]: consecutive tokens of one sequence inside one page (split at page
//                 boundaries by the caller; kv_page_runs() does it on the host)
//   page_table    [batch][page_table_stride] int32
//   k_codes,
//   v_codes       [num_pages][n_kv_heads][kKvPageSize][head_dim] e4m3 bytes
//   k_scales,
//   v_scales      [num_pages][n_kv_heads] f32
// Runs must not share a (page, KV head): one block owns a page slab while it rescales it.
// Only launches on `stream` (no allocation, no synchronization).
#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>
#include <vector>

namespace deltainfer::cuda {

struct KvPageRun {
  int32_t first_row = 0;       // row of k/v holding the run's first token
  int32_t seq = 0;             // row of page_table
  int32_t first_position = 0;  // position of the run's first token in its sequence
  int32_t count = 0;           // tokens, all inside first_position's page
};

// Splits each (first_row, seq, first_position, count) entry at page boundaries.
std::vector<KvPageRun> kv_page_runs(const std::vector<KvPageRun>& entries);

struct Fp8AppendArgs {
  const __nv_bfloat16* k = nullptr;
  const __nv_bfloat16* v = nullptr;
  const KvPageRun* runs = nullptr;
  int n_runs = 0;
  const int32_t* page_table = nullptr;
  int page_table_stride = 0;
  int n_kv_heads = 0;
  int head_dim = 0;  // 64 or 128
  uint8_t* k_codes = nullptr;
  uint8_t* v_codes = nullptr;
  float* k_scales = nullptr;
  float* v_scales = nullptr;
};

// Throws InputError for unsupported shapes or null pointers, Error when the launch fails.
void fp8_append_kv(const Fp8AppendArgs& args, cudaStream_t stream);

}  // namespace deltainfer::cuda
