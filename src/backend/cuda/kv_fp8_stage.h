#pragma once
// FP8 KV pages -> a bf16 staging pool, so that the bf16 prefill kernels (dense, sliding, vslash,
// Δ rows: prefill_attention.h, sparse_prefill.h, delta_correct.h), whose Hopper paths read bf16
// pools through TMA, run unchanged on an FP8 cache (--kv-dtype fp8).
//
// Layout: a compact staging pool with its own page table, not a full-size bf16 twin of the pool.
// A prefill step stages, for one layer at a time, only the pages its chunks attend to (each chunk's
// sequence's pages [0, ceil(end / 64))), so the staging memory is one layer's worth of the step's
// context: at 1M tokens, 16384 pages x n_kv_heads x 64 x head_dim x 2 bytes for K and again for V
// (4 GiB at 8 KV heads of 128 dims), where a bf16 twin of every layer's pool would be the bf16
// cache itself (the memory FP8 exists to save).
//
//   source      the FP8 pools (paged_kv.h, dtype Fp8E4m3): k_pool/v_pool codes, k_scales/v_scales,
//               num_pages, n_kv_heads, head_dim (64 or 128); its page_table and kv_lens are unread
//   pages       [n_pages] int32, device: staging page i is pool page pages[i]
//   k_stage,
//   v_stage     [n_pages][n_kv_heads][kKvPageSize][head_dim] bf16, device
// Staging page i holds, for every KV head and all 64 rows, decode(code) * scale of pool page
// pages[i] rounded to bf16, which is exact: every e4m3 value times a power-of-two scale is a bf16
// value. Rows no sequence has written yet are converted as they are (possibly NaN): the prefill
// kernels mask positions past each sequence's length, as they do on a bf16 pool. A page id outside
// [0, num_pages) stages a page of NaN rather than reading outside the pool.
//
// A chunk's attention then reads the staging pool through its staging table: staging_tables()
// turns the sequences' rows of the pool's page table into the page list and the rows that map each
// sequence's logical page p to its staging page.
// Only launches on `stream` (no allocation, no synchronization): graph-capturable.
#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>
#include <vector>

#include "backend/cuda/paged_kv.h"

namespace deltainfer::cuda {

struct Fp8StageArgs {
  PagedKv source;
  const int32_t* pages = nullptr;
  int n_pages = 0;
  __nv_bfloat16* k_stage = nullptr;
  __nv_bfloat16* v_stage = nullptr;
};

// Throws InputError for a source that is not a valid FP8 cache, an unsupported head_dim, or null
// pointers; Error when the launch fails. n_pages 0 launches nothing.
void fp8_stage_pages(const Fp8StageArgs& args, cudaStream_t stream);

// The host side of a staging: for sequence s, the first pages_needed[s] entries of its row of
// page_table (stride entries a row) are staged, sequence after sequence.
struct StagingTables {
  std::vector<int32_t> pages;  // the pool pages to stage, in staging order (Fp8StageArgs::pages)
  std::vector<int32_t> table;  // [sequences][stride]: logical page -> staging page, -1 past the needed ones
  int stride = 0;
};

// Throws InputError when a sequence needs more pages than a row holds.
StagingTables staging_tables(const int32_t* page_table, int stride, const std::vector<int>& pages_needed);

}  // namespace deltainfer::cuda
