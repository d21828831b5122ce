#pragma once
// One layer's paged KV cache as the attention kernels read it, for a batch of sequences: the one
// descriptor that dense decode (decode_attention.h), sparse decode and Quest (delta_decode.h),
// and the prefill kernels (prefill_attention.h, sparse_prefill.h, vslash_estimate.h) hold,
// instead of each repeating the pool, page-table and length fields. The prefill kernels take
// their sequences' lengths from the host (max_kv_len of a single sequence, VarlenChunk::kv_len of
// a batch) and read no kv_lens.
//
// Layouts (all device pointers):
//   k_pool,
//   v_pool     [num_pages][n_kv_heads][kKvPageSize][head_dim] values of `dtype`:
//                Bf16     __nv_bfloat16 (2 bytes a value)
//                Fp8E4m3  e4m3 codes (1 byte a value), the page format of core/kv_fp8_page.h
//   k_scales,
//   v_scales   [num_pages][n_kv_heads] f32, FP8 only (nullptr for bf16): the value of code c in
//              pool page p, KV head h is decode(c) * scales[p * n_kv_heads + h]
//   page_table [batch][page_table_stride] int32: row s maps sequence s's logical page to a pool page
//   kv_lens    [batch] int32, each in [0, max_kv_len]: sequence s's keys are positions [0, kv_lens[s])
// Keys are stored after RoPE. A pool page may hold anything (NaN included) outside the positions
// a sequence's page table and length reach: readers never let those slots into their results.
//
// The struct only points; it owns nothing. validate_paged_kv() checks on the host what can be
// checked there (pointers, sizes, that table rows reach max_kv_len); page ids and lengths live on
// the device and are the producer's contract.
#include <cstddef>
#include <cstdint>

#include "core/kv_page.h"

namespace deltainfer::cuda {

// The engine's one page size (core/kv_page.h), as the int the kernels index with.
inline constexpr int kKvPageSize = static_cast<int>(kKvPageTokens);

struct PagedKv {
  const void* k_pool = nullptr;
  const void* v_pool = nullptr;
  KvDtype dtype = KvDtype::Bf16;
  const float* k_scales = nullptr;  // FP8 only
  const float* v_scales = nullptr;  // FP8 only
  // Pages in each pool (and rows of the scale arrays); 0 where the caller does not know it (a raw
  // pointer from Python): the decode kernels reach pages only through the table, so only kernels
  // that walk the pool themselves (the FP8 staging copy) or bound their loads by it (the Hopper
  // prefill kernels' TMA descriptors) require it.
  int num_pages = 0;
  const int32_t* page_table = nullptr;
  int page_table_stride = 0;  // pages per row of page_table
  const int32_t* kv_lens = nullptr;
  int batch = 0;       // sequences: rows of page_table and entries of kv_lens
  int max_kv_len = 0;  // host-side bound on kv_lens (plans size splits and workspaces by it)
  int n_kv_heads = 0;
  int head_dim = 0;
};

// Bytes of one stored value of `dtype`.
inline size_t kv_value_bytes(KvDtype dtype) { return dtype == KvDtype::Fp8E4m3 ? 1 : 2; }

// What a kernel reads of the descriptor: Quest's key bounds read no V; sparse decode takes its
// positions from token sets and reads no kv_lens.
struct PagedKvReads {
  bool values = true;   // v_pool (and v_scales in FP8)
  bool lengths = true;  // kv_lens
};

// Throws InputError naming `what` and the first bad field: a null pointer the kernel reads (FP8
// scales included), a non-positive size, a head_dim that is not a multiple of 16 (the kernels load
// 16-byte pieces of rows), a negative max_kv_len, or page_table rows too short for max_kv_len.
void validate_paged_kv(const char* what, const PagedKv& kv, PagedKvReads reads = {});

// Sequence `row` of `kv` alone, as the single-sequence prefill calls take it: batch 1, page_table
// its row, max_kv_len = kv_len (its key count), kv_lens null; pools, dtype and shape as kv's.
// Host-side pointer arithmetic; checks nothing.
PagedKv sequence_kv(const PagedKv& kv, int row, int kv_len);

}  // namespace deltainfer::cuda
