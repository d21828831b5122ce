// Vertical-slash estimation and block lists (see vslash_estimate.h). Kernels, in stream order:
//   scores      grid (key tiles of 64, KV heads): each CTA loads its key tile once, then for each
//               query head of the group and each chunk of 32 estimating rows forms the 32 x 64
//               probability tile in shared memory; column sums are complete per tile (vertical),
//               diagonal sums are partial (a diagonal crosses two or three tiles) and go to the
//               tile's own slice of `partials`.
//   slash       one thread per (head, offset): sums the partials of the tiles the diagonal crosses
//               in tile order.
//   page_topk   (page_topk.cu) top columns and top offsets.
//   pattern     per head: flags of the key blocks holding a kept column, and for every offset o
//               the number of kept offsets below o (so "a kept offset in [lo, hi]" is O(1)).
//   count/scan/fill   the CSR lists per (head, query block).
// Every sum runs in a fixed order, so the result is deterministic.
#include <cub/block/block_scan.cuh>

#include <algorithm>
#include <cstdint>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/page_topk.h"
#include "backend/cuda/vslash_estimate.h"
#include "core/error.h"

namespace deltainfer::cuda {
namespace {

constexpr int kKeyTile = kSparseKeyBlock;  // score tile = page = key block: one page table entry
constexpr int kRowChunk = 32;
constexpr int kScoreThreads = 256;
constexpr int kRowGroups = kScoreThreads / kKeyTile;        // 4 row groups of 64 key lanes
constexpr int kRowsPerThread = kRowChunk / kRowGroups;      // 8
constexpr int kChunkDiagonals = kRowChunk + kKeyTile - 1;   // 95 diagonals cross a 32 x 64 tile
constexpr int kMaxHeadWords = 64;                           // head_dim 128 as bf16 pairs
constexpr int kDiagonalPad = kKeyTile - 1;                  // diagonals per tile = rows + 63
constexpr int kListThreads = 128;
constexpr int kScanThreads = 1024;
constexpr int kFlatThreads = 256;
static_assert(kKeyTile == kKvPageSize, "a score tile must be one cache page");

size_t as_size(int64_t value) { return static_cast<size_t>(value); }
int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

struct ScoreArgs {
  const __nv_bfloat16* q = nullptr;  // estimating rows [rows][n_heads][head_dim]
  const float* lse = nullptr;        // [rows][n_heads]
  PagedKv kv;  // the chunk's (bf16): its pools, page-table row, n_kv_heads and head_dim
  int n_heads = 0;
  float scale = 0.0f;
  int rows = 0;       // E
  int first_row = 0;  // position of estimating row 0 (= end - E)
  int end = 0;        // keys 0..end-1
  int score_stride = 0;
  int partial_stride = 0;  // floats per (head, tile) slice: max rows + 63
  int tiles_stride = 0;    // tile slices per head
  float* vertical = nullptr;
  float* partials = nullptr;
};

__device__ __forceinline__ size_t partial_slice(const ScoreArgs& a, int head, int tile) {
  return (static_cast<size_t>(head) * a.tiles_stride + tile) * a.partial_stride;
}

// Logits of kRowsPerThread rows (row group rg, stride kRowGroups) against key lane jj.
__device__ void tile_logits(const uint32_t* q_words, const uint32_t* k_words, int words, int jj, int rg,
                            float (&dot)[kRowsPerThread]) {
#pragma unroll
  for (int m = 0; m < kRowsPerThread; ++m) dot[m] = 0.0f;
  for (int w = 0; w < words; ++w) {
    uint32_t kw = k_words[jj * (words + 1) + w];
    const float2 k2 = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&kw));
#pragma unroll
    for (int m = 0; m < kRowsPerThread; ++m) {
      uint32_t qw = q_words[(rg + m * kRowGroups) * words + w];
      const float2 q2 = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&qw));
      dot[m] = fmaf(q2.x, k2.x, dot[m]);
      dot[m] = fmaf(q2.y, k2.y, dot[m]);
    }
  }
}

__global__ void __launch_bounds__(kScoreThreads) vslash_scores_kernel(const ScoreArgs a) {
  __shared__ uint32_t k_words[kKeyTile * (kMaxHeadWords + 1)];  // padded rows: no bank conflicts
  __shared__ uint32_t q_words[kRowChunk * kMaxHeadWords];
  __shared__ float probs[kRowChunk][kKeyTile + 1];
  const int tile = static_cast<int>(blockIdx.x), kv_head = static_cast<int>(blockIdx.y);
  const int tid = static_cast<int>(threadIdx.x), jj = tid % kKeyTile, rg = tid / kKeyTile;
  const int head_dim = a.kv.head_dim, n_kv_heads = a.kv.n_kv_heads;
  const int words = head_dim / 2, group = a.n_heads / n_kv_heads;
  const int first_key = tile * kKeyTile;

  const size_t page = static_cast<size_t>(a.kv.page_table[tile]);
  const uint32_t* k_page = reinterpret_cast<const uint32_t*>(
      static_cast<const __nv_bfloat16*>(a.kv.k_pool) + (page * n_kv_heads + kv_head) * kKvPageSize * head_dim);
  for (int i = tid; i < kKeyTile * words; i += kScoreThreads) {
    k_words[(i / words) * (words + 1) + i % words] = k_page[i];
  }

  for (int g = 0; g < group; ++g) {
    const int head = kv_head * group + g;
    float* partial = a.partials + partial_slice(a, head, tile);
    for (int i = tid; i < a.rows + kDiagonalPad; i += kScoreThreads) partial[i] = 0.0f;
    float column = 0.0f;
    for (int t0 = 0; t0 < a.rows; t0 += kRowChunk) {
      __syncthreads();  // k_words loaded, previous chunk's q_words / probs / partials done
      for (int i = tid; i < kRowChunk * words; i += kScoreThreads) {
        const int t = t0 + i / words;
        const uint32_t* row = reinterpret_cast<const uint32_t*>(
            a.q + (static_cast<size_t>(t) * a.n_heads + head) * head_dim);
        q_words[i] = t < a.rows ? row[i % words] : 0u;
      }
      __syncthreads();
      float dot[kRowsPerThread];
      tile_logits(q_words, k_words, words, jj, rg, dot);
#pragma unroll
      for (int m = 0; m < kRowsPerThread; ++m) {
        const int r = rg + m * kRowGroups, t = t0 + r;
        // Keys past a row (and past the end, whose slots may hold anything) are selected out,
        // never multiplied: their logits may be NaN.
        const bool causal = t < a.rows && first_key + jj <= a.first_row + t;
        probs[r][jj] = causal ? expf(dot[m] * a.scale - a.lse[static_cast<size_t>(t) * a.n_heads + head]) : 0.0f;
      }
      __syncthreads();
      if (tid < kKeyTile) {
        for (int r = 0; r < kRowChunk; ++r) column += probs[r][tid];
      }
      // Tile diagonal d = t - jj + 63; this chunk's rows reach d = t0 + tid, tid < 95.
      if (tid < kChunkDiagonals && t0 + tid < a.rows + kDiagonalPad) {
        float sum = 0.0f;
        for (int r = 0; r < kRowChunk; ++r) {
          const int lane = r + kDiagonalPad - tid;
          if (lane >= 0 && lane < kKeyTile) sum += probs[r][lane];
        }
        partial[t0 + tid] += sum;
      }
    }
    if (tid < kKeyTile && first_key + tid < a.end) {
      a.vertical[static_cast<size_t>(head) * a.score_stride + first_key + tid] = column;
    }
    __syncthreads();
  }
}

// slash[o] = sum over the tiles k the diagonal o crosses; in tile k it is d = o - first_row + 64 k
// + 63, which lies in [0, rows + 63) for k in [ceil((first_row - 63 - o) / 64), (end - 1 - o) / 64].
__global__ void __launch_bounds__(kFlatThreads) vslash_slash_kernel(const ScoreArgs a, float* slash,
                                                                    int32_t* kv_len_out) {
  const int o = static_cast<int>(blockIdx.x) * kFlatThreads + static_cast<int>(threadIdx.x);
  const int head = static_cast<int>(blockIdx.y);
  if (o == 0 && head == 0) *kv_len_out = a.end;
  if (o >= a.end) return;
  const int below = a.first_row - kDiagonalPad - o;
  const int k_first = below <= 0 ? 0 : (below + kKeyTile - 1) / kKeyTile;
  const int k_last = (a.end - 1 - o) / kKeyTile;
  float sum = 0.0f;
  for (int k = k_first; k <= k_last; ++k) {
    sum += a.partials[partial_slice(a, head, k) + static_cast<size_t>(o - a.first_row + k * kKeyTile + kDiagonalPad)];
  }
  slash[static_cast<size_t>(head) * a.score_stride + o] = sum;
}

struct PatternArgs {
  const int32_t* columns = nullptr;  // [n_heads][column_capacity], ascending
  const int32_t* column_counts = nullptr;
  int column_capacity = 0;
  const int32_t* offsets = nullptr;  // [n_heads][offset_capacity], ascending
  const int32_t* offset_counts = nullptr;
  int offset_capacity = 0;
  int end = 0;
  int score_stride = 0;
  int flag_stride = 0;                 // key blocks per head in the flag array
  unsigned char* column_flags = nullptr;  // [n_heads][flag_stride]
  int32_t* offsets_below = nullptr;       // [n_heads][score_stride + 1]
};

__device__ int lower_bound(const int32_t* sorted, int count, int value) {
  int lo = 0, hi = count;
  while (lo < hi) {
    const int mid = (lo + hi) / 2;
    if (sorted[mid] < value) lo = mid + 1; else hi = mid;
  }
  return lo;
}

__global__ void __launch_bounds__(kFlatThreads) vslash_pattern_kernel(const PatternArgs a) {
  const int i = static_cast<int>(blockIdx.x) * kFlatThreads + static_cast<int>(threadIdx.x);
  const int head = static_cast<int>(blockIdx.y);
  if (i <= a.end) {
    const int32_t* offsets = a.offsets + static_cast<size_t>(head) * a.offset_capacity;
    a.offsets_below[static_cast<size_t>(head) * (a.score_stride + 1) + i] =
        lower_bound(offsets, a.offset_counts[head], i);
  }
  if (i < (a.end + kSparseKeyBlock - 1) / kSparseKeyBlock) {
    const int32_t* columns = a.columns + static_cast<size_t>(head) * a.column_capacity;
    const int count = a.column_counts[head];
    const int first = lower_bound(columns, count, i * kSparseKeyBlock);
    a.column_flags[static_cast<size_t>(head) * a.flag_stride + i] =
        first < count && columns[first] < (i + 1) * kSparseKeyBlock ? 1 : 0;
  }
}

struct ListArgs {
  int first_pos = 0;
  int end = 0;
  int n_qblocks = 0;
  int score_stride = 0;
  int flag_stride = 0;
  const unsigned char* column_flags = nullptr;
  const int32_t* offsets_below = nullptr;
  int32_t* counts = nullptr;   // [n_heads * n_qblocks]
  int32_t* offsets = nullptr;  // [n_heads * n_qblocks + 1]
  int32_t* indices = nullptr;
};

struct QueryBlock {
  int i0, i1, last;  // rows [i0, i1), last key block
};

__device__ QueryBlock query_block(const ListArgs& a, int qb) {
  const int i0 = a.first_pos + qb * kSparseQueryBlock;
  const int i1 = min(a.end, i0 + kSparseQueryBlock);
  return {i0, i1, (i1 - 1) / kSparseKeyBlock};
}

// attention::vertical_slash_ranges for 64-key blocks: sink, local (the blocks of the rows and the
// one before), kept columns, and kept offsets o with i0 - 64b - 63 <= o <= i1 - 1 - 64b (the
// diagonal meets rows [i0, i1) inside block b). Needs b <= q.last.
__device__ bool keeps_block(const ListArgs& a, int head, const QueryBlock& q, int b) {
  if (b == 0 || b >= q.i0 / kSparseKeyBlock - 1) return true;
  if (a.column_flags[static_cast<size_t>(head) * a.flag_stride + b] != 0) return true;
  const int lo = max(0, q.i0 - kSparseKeyBlock * b - (kSparseKeyBlock - 1));
  const int hi = q.i1 - 1 - kSparseKeyBlock * b;
  const int32_t* below = a.offsets_below + static_cast<size_t>(head) * (a.score_stride + 1);
  return below[hi + 1] > below[lo];
}

__global__ void __launch_bounds__(kListThreads) vslash_count_kernel(const ListArgs a) {
  const int qb = static_cast<int>(blockIdx.x), head = static_cast<int>(blockIdx.y);
  const QueryBlock q = query_block(a, qb);
  int total = 0;
  for (int base = 0; base <= q.last; base += kListThreads) {
    const int b = base + static_cast<int>(threadIdx.x);
    total += __syncthreads_count(b <= q.last && keeps_block(a, head, q, b) ? 1 : 0);
  }
  if (threadIdx.x == 0) a.counts[head * a.n_qblocks + qb] = total;
}

// One CTA: offsets[i] = sum of counts[0..i), offsets[n] = the total.
__global__ void __launch_bounds__(kScanThreads) vslash_scan_kernel(const int32_t* counts, int n, int32_t* offsets) {
  using Scan = cub::BlockScan<int, kScanThreads>;
  __shared__ typename Scan::TempStorage storage;
  int carry = 0;
  for (int base = 0; base < n; base += kScanThreads) {
    const int i = base + static_cast<int>(threadIdx.x);
    int exclusive = 0, total = 0;
    Scan(storage).ExclusiveSum(i < n ? counts[i] : 0, exclusive, total);
    if (i < n) offsets[i] = carry + exclusive;
    carry += total;
    __syncthreads();
  }
  if (threadIdx.x == 0) offsets[n] = carry;
}

__global__ void __launch_bounds__(kListThreads) vslash_fill_kernel(const ListArgs a) {
  using Scan = cub::BlockScan<int, kListThreads>;
  __shared__ typename Scan::TempStorage storage;
  const int qb = static_cast<int>(blockIdx.x), head = static_cast<int>(blockIdx.y);
  const QueryBlock q = query_block(a, qb);
  int32_t* out = a.indices + a.offsets[head * a.n_qblocks + qb];
  int written = 0;
  for (int base = 0; base <= q.last; base += kListThreads) {
    const int b = base + static_cast<int>(threadIdx.x);
    const int keep = b <= q.last && keeps_block(a, head, q, b) ? 1 : 0;
    int rank = 0, total = 0;
    Scan(storage).ExclusiveSum(keep, rank, total);
    if (keep != 0) out[written + rank] = b;
    written += total;
    __syncthreads();
  }
}

// Key blocks the query blocks of a chunk can need, counted from the last query block (k = 0)
// backwards: block k ends at row <= last_row(k), and never needs more than `per_block`.
int64_t capped_causal_blocks(int64_t last_row, int64_t per_block) {
  return std::min(last_row / kSparseKeyBlock + 1, per_block);
}

int64_t per_query_block_bound(const VslashParams& p) {
  // 128 rows span at most 3 key blocks, + the one before + the sink; an offset crosses <= 3.
  return 5 + int64_t{p.vertical} + 3 * int64_t{p.slash};
}

}  // namespace

int64_t vslash_list_bound(int64_t first_pos, int64_t n_q, int n_heads, const VslashParams& params) {
  int64_t entries = 0;
  for (int64_t qb = 0; qb * kSparseQueryBlock < n_q; ++qb) {
    const int64_t last_row = first_pos + std::min((qb + 1) * kSparseQueryBlock, n_q) - 1;
    entries += capped_causal_blocks(last_row, per_query_block_bound(params));
  }
  return entries * n_heads;
}

VslashEstimator::VslashEstimator(int n_heads, int head_dim, int64_t max_chunk, int64_t capacity,
                                 const VslashParams& params)
    : n_heads_(n_heads), head_dim_(head_dim), params_(params), max_chunk_(max_chunk), capacity_(capacity) {
  if (n_heads < 1 || head_dim < 2 || head_dim > 2 * kMaxHeadWords || head_dim % 2 != 0 || max_chunk < 1 ||
      capacity < max_chunk || capacity > INT32_MAX - 1 || params.estimate_queries < 1 || params.vertical < 0 ||
      params.slash < 0) {
    throw_input_error(
        "vertical-slash estimation: {} heads of dim {}, chunks of {} in a cache of {}, estimate {} vertical {} "
        "slash {} are not supported",
        n_heads, head_dim, max_chunk, capacity, params.estimate_queries, params.vertical, params.slash);
  }
  score_stride_ = static_cast<int>(capacity);
  max_estimate_rows_ = static_cast<int>(std::min<int64_t>(params.estimate_queries, max_chunk));
  // The worst chunk ends at the cache's end; query block k from its last ends at or before row
  // capacity - 1 - 128 (k - 1).
  int64_t entries = 0;
  for (int64_t k = 0; k < ceil_div(max_chunk, kSparseQueryBlock); ++k) {
    const int64_t last_row = capacity - 1 - kSparseQueryBlock * std::max<int64_t>(0, k - 1);
    entries += capped_causal_blocks(last_row, per_query_block_bound(params));
  }
  list_capacity_ = entries * n_heads;
  const int64_t qblock_lists = int64_t{n_heads} * ceil_div(max_chunk, kSparseQueryBlock);
  if (list_capacity_ > INT32_MAX) {
    throw_input_error("vertical-slash estimation: {} block-list entries for chunks of {} exceed int32 offsets; "
                      "use a smaller --prefill-chunk",
                      list_capacity_, max_chunk);
  }
  const int64_t tiles = ceil_div(capacity, kKeyTile);
  const int64_t column_slots = std::max<int64_t>(1, std::min<int64_t>(params.vertical, capacity));
  const int64_t offset_slots = std::max<int64_t>(1, std::min<int64_t>(params.slash, capacity));
  estimate_out_ = DeviceBuffer<__nv_bfloat16>(as_size(int64_t{max_estimate_rows_} * n_heads * head_dim));
  lse_ = DeviceBuffer<float>(as_size(int64_t{max_estimate_rows_} * n_heads));
  vertical_ = DeviceBuffer<float>(as_size(int64_t{n_heads} * capacity));
  slash_ = DeviceBuffer<float>(as_size(int64_t{n_heads} * capacity));
  diagonal_partials_ = DeviceBuffer<float>(as_size(int64_t{n_heads} * tiles * (max_estimate_rows_ + kDiagonalPad)));
  kv_len_ = DeviceBuffer<int32_t>(1);
  columns_ = DeviceBuffer<int32_t>(as_size(n_heads * column_slots));
  column_counts_ = DeviceBuffer<int32_t>(as_size(n_heads));
  offsets_ = DeviceBuffer<int32_t>(as_size(n_heads * offset_slots));
  offset_counts_ = DeviceBuffer<int32_t>(as_size(n_heads));
  column_block_flags_ = DeviceBuffer<unsigned char>(as_size(int64_t{n_heads} * tiles));
  offsets_below_ = DeviceBuffer<int32_t>(as_size(int64_t{n_heads} * (capacity + 1)));
  list_counts_ = DeviceBuffer<int32_t>(as_size(qblock_lists));
  list_offsets_ = DeviceBuffer<int32_t>(as_size(qblock_lists + 1));
  list_indices_ = DeviceBuffer<int32_t>(as_size(std::max<int64_t>(1, list_capacity_)));
}

size_t VslashEstimator::device_bytes() const {
  return estimate_out_.bytes() + lse_.bytes() + vertical_.bytes() + slash_.bytes() + diagonal_partials_.bytes() +
         kv_len_.bytes() + columns_.bytes() + column_counts_.bytes() + offsets_.bytes() + offset_counts_.bytes() +
         column_block_flags_.bytes() + offsets_below_.bytes() + list_counts_.bytes() + list_offsets_.bytes() +
         list_indices_.bytes();
}

TokenSet VslashEstimator::kept(DeviceBuffer<int32_t>& indices, DeviceBuffer<int32_t>& counts) const {
  return TokenSet{indices.data(), counts.data(), static_cast<int>(indices.size() / as_size(n_heads_)), n_heads_};
}

void VslashEstimator::select_top(const float* scores, int k, DeviceBuffer<int32_t>& indices,
                                 DeviceBuffer<int32_t>& counts, cudaStream_t stream) {
  if (k == 0) {
    CUDA_CHECK(cudaMemsetAsync(counts.data(), 0, counts.bytes(), stream));
    return;
  }
  PageTopkArgs top;
  top.scores = scores;
  top.score_stride = score_stride_;
  top.rows = n_heads_;
  top.kv_lens = kv_len_.data();
  top.page = 1;
  top.k_pages = std::min(k, score_stride_);
  top.set = kept(indices, counts);
  page_topk(top, stream);
}

BlockSparseLists VslashEstimator::build_lists(const PrefillAttentionArgs& chunk, cudaStream_t stream) {
  const int64_t end = int64_t{chunk.first_pos} + chunk.n_q;
  if (chunk.q_pos != nullptr || chunk.n_q < 1 || chunk.n_q > max_chunk_ || chunk.first_pos < 0 ||
      end > capacity_ || chunk.kv.max_kv_len != end || chunk.n_heads != n_heads_ || chunk.kv.head_dim != head_dim_ ||
      chunk.kv.n_kv_heads < 1 || chunk.n_heads % chunk.kv.n_kv_heads != 0) {
    throw_input_error(
        "vertical-slash estimation: chunk of {} rows at {} over {} keys ({} heads of dim {}) does not fit the plan "
        "(chunks of {} in {} positions, {} heads of dim {}, contiguous queries)",
        chunk.n_q, chunk.first_pos, chunk.kv.max_kv_len, chunk.n_heads, chunk.kv.head_dim, max_chunk_, capacity_, n_heads_,
        head_dim_);
  }
  if (vslash_list_bound(chunk.first_pos, chunk.n_q, n_heads_, params_) > list_capacity_) {
    throw_error("vertical-slash estimation: block lists of a chunk at {} exceed the planned {} entries",
                chunk.first_pos, list_capacity_);
  }
  const int rows = std::min(max_estimate_rows_, chunk.n_q);
  const int64_t row_elems = int64_t{n_heads_} * head_dim_;

  PrefillAttentionArgs last = chunk;  // the estimating rows, for their log-sum-exp
  last.q = chunk.q + (chunk.n_q - rows) * row_elems;
  last.first_pos = static_cast<int>(end - rows);
  last.n_q = rows;
  last.out = estimate_out_.data();
  last.lse = lse_.data();
  prefill_attention(last, stream);

  ScoreArgs s;
  s.q = last.q;
  s.lse = lse_.data();
  s.kv = chunk.kv;
  s.n_heads = n_heads_;
  s.scale = chunk.softmax_scale;
  s.rows = rows;
  s.first_row = last.first_pos;
  s.end = static_cast<int>(end);
  s.score_stride = score_stride_;
  s.partial_stride = max_estimate_rows_ + kDiagonalPad;
  s.tiles_stride = static_cast<int>(ceil_div(capacity_, kKeyTile));
  s.vertical = vertical_.data();
  s.partials = diagonal_partials_.data();
  const unsigned tiles = static_cast<unsigned>(ceil_div(end, kKeyTile));
  vslash_scores_kernel<<<dim3(tiles, static_cast<unsigned>(chunk.kv.n_kv_heads)), kScoreThreads, 0, stream>>>(s);
  CUDA_CHECK_LAUNCH();
  const unsigned offset_blocks = static_cast<unsigned>(ceil_div(end, kFlatThreads));
  vslash_slash_kernel<<<dim3(offset_blocks, static_cast<unsigned>(n_heads_)), kFlatThreads, 0, stream>>>(
      s, slash_.data(), kv_len_.data());
  CUDA_CHECK_LAUNCH();

  select_top(vertical_.data(), params_.vertical, columns_, column_counts_, stream);
  select_top(slash_.data(), params_.slash, offsets_, offset_counts_, stream);

  PatternArgs p;
  p.columns = columns_.data();
  p.column_counts = column_counts_.data();
  p.column_capacity = kept_columns().capacity;
  p.offsets = offsets_.data();
  p.offset_counts = offset_counts_.data();
  p.offset_capacity = kept_offsets().capacity;
  p.end = s.end;
  p.score_stride = score_stride_;
  p.flag_stride = s.tiles_stride;
  p.column_flags = column_block_flags_.data();
  p.offsets_below = offsets_below_.data();
  const unsigned pattern_blocks = static_cast<unsigned>(ceil_div(end + 1, kFlatThreads));
  vslash_pattern_kernel<<<dim3(pattern_blocks, static_cast<unsigned>(n_heads_)), kFlatThreads, 0, stream>>>(p);
  CUDA_CHECK_LAUNCH();

  ListArgs l;
  l.first_pos = chunk.first_pos;
  l.end = s.end;
  l.n_qblocks = static_cast<int>(ceil_div(chunk.n_q, kSparseQueryBlock));
  l.score_stride = score_stride_;
  l.flag_stride = s.tiles_stride;
  l.column_flags = column_block_flags_.data();
  l.offsets_below = offsets_below_.data();
  l.counts = list_counts_.data();
  l.offsets = list_offsets_.data();
  l.indices = list_indices_.data();
  const dim3 lists(static_cast<unsigned>(l.n_qblocks), static_cast<unsigned>(n_heads_));
  vslash_count_kernel<<<lists, kListThreads, 0, stream>>>(l);
  CUDA_CHECK_LAUNCH();
  vslash_scan_kernel<<<1, kScanThreads, 0, stream>>>(l.counts, n_heads_ * l.n_qblocks, l.offsets);
  CUDA_CHECK_LAUNCH();
  vslash_fill_kernel<<<lists, kListThreads, 0, stream>>>(l);
  CUDA_CHECK_LAUNCH();
  return BlockSparseLists{list_offsets_.data(), list_indices_.data()};
}

}  // namespace deltainfer::cuda
