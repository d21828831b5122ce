// Top-k pages per row (see page_topk.h). Scores become order-preserving 32-bit keys; four
// histogram passes of 8 bits each narrow down the key of the k-th largest page (radix select, no
// sort), then one pass in position order keeps every page above that key and the earliest pages
// equal to it: ties go toward earlier pages, and the output comes out sorted by position.
#include <cub/block/block_scan.cuh>

#include <cstdint>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/page_topk.h"
#include "core/error.h"

namespace deltainfer::cuda {
namespace {

constexpr int kThreads = 1024;
constexpr int kWarps = kThreads / 32;
constexpr int kBins = 256;
constexpr int kItems = 4;  // consecutive pages per thread in the final pass

using BlockScan = cub::BlockScan<int, kThreads>;

// Larger score -> larger key; NaN ranks with -inf.
__device__ __forceinline__ uint32_t order_key(float score) {
  if (score != score) score = -INFINITY;
  const uint32_t bits = __float_as_uint(score);
  return (bits & 0x80000000u) != 0 ? ~bits : bits | 0x80000000u;
}

struct SelectSmem {
  union {
    typename BlockScan::TempStorage scan;
    unsigned hist[kWarps][kBins];
  };
  uint32_t prefix;
  int remaining;
  int last_page_selected;
};

// Radix select: the key of the k-th largest of keys[0, n) and how many keys equal to it belong to
// the top k (k in [1, n)). Every thread returns the same pair.
__device__ void kth_largest_key(const float* scores, int n, int k, SelectSmem& smem, uint32_t& threshold,
                                int& take_ties) {
  const int tid = static_cast<int>(threadIdx.x);
  const int warp = tid / 32;
  uint32_t prefix = 0;
  uint32_t mask = 0;
  int remaining = k;
  for (int shift = 24; shift >= 0; shift -= 8) {
    for (int i = tid; i < kWarps * kBins; i += kThreads) (&smem.hist[0][0])[i] = 0;
    __syncthreads();
    for (int i = tid; i < n; i += kThreads) {
      const uint32_t key = order_key(scores[i]);
      if ((key & mask) == prefix) atomicAdd(&smem.hist[warp][(key >> shift) & 0xFFu], 1u);
    }
    __syncthreads();
    // Thread t holds bin 255 - t, so an inclusive prefix sum counts the keys in bins >= that one.
    int count = 0;
    if (tid < kBins) {
      for (int w = 0; w < kWarps; ++w) count += static_cast<int>(smem.hist[w][kBins - 1 - tid]);
    }
    __syncthreads();  // the histogram and the scan storage share memory
    int inclusive = 0;
    BlockScan(smem.scan).InclusiveSum(count, inclusive);
    const int exclusive = inclusive - count;
    if (tid < kBins && exclusive < remaining && inclusive >= remaining) {
      smem.prefix = prefix | (static_cast<uint32_t>(kBins - 1 - tid) << shift);
      smem.remaining = remaining - exclusive;
    }
    __syncthreads();
    prefix = smem.prefix;
    remaining = smem.remaining;
    mask |= 0xFFu << shift;
    __syncthreads();
  }
  threshold = prefix;
  take_ties = remaining;
}

// grid: rows; block: kThreads.
__global__ void __launch_bounds__(kThreads) page_topk_kernel(const PageTopkArgs a) {
  __shared__ SelectSmem smem;
  const int row = static_cast<int>(blockIdx.x);
  const int tid = static_cast<int>(threadIdx.x);
  const int kv_len = a.kv_lens[row / a.set.sets_per_seq];
  const int n_valid = min((kv_len + a.page - 1) / a.page, a.score_stride);
  const int k = min(a.k_pages, n_valid);
  const float* scores = a.scores + static_cast<size_t>(row) * a.score_stride;
  int32_t* indices = a.set.indices + static_cast<size_t>(row) * a.set.capacity;

  const bool take_all = k >= n_valid;
  uint32_t threshold = 0;
  int take_ties = 0;
  if (!take_all) kth_largest_key(scores, n_valid, k, smem, threshold, take_ties);
  if (tid == 0) smem.last_page_selected = 0;

  int ties_before = 0;  // keys equal to the threshold in earlier tiles
  int selected_before = 0;
  for (int tile = 0; tile < n_valid; tile += kThreads * kItems) {
    const int first = tile + tid * kItems;
    bool above[kItems];
    bool tie[kItems];
    int tie_count = 0;
#pragma unroll
    for (int j = 0; j < kItems; ++j) {
      const bool valid = first + j < n_valid;
      const uint32_t key = valid && !take_all ? order_key(scores[first + j]) : 0u;
      above[j] = valid && (take_all || key > threshold);
      tie[j] = valid && !take_all && key == threshold;
      tie_count += tie[j] ? 1 : 0;
    }
    int tie_rank = 0;
    int tile_ties = 0;
    __syncthreads();
    BlockScan(smem.scan).ExclusiveSum(tie_count, tie_rank, tile_ties);
    tie_rank += ties_before;
    bool keep[kItems];
    int keep_count = 0;
#pragma unroll
    for (int j = 0; j < kItems; ++j) {
      keep[j] = above[j] || (tie[j] && tie_rank++ < take_ties);
      keep_count += keep[j] ? 1 : 0;
    }
    int rank = 0;
    int tile_kept = 0;
    __syncthreads();
    BlockScan(smem.scan).ExclusiveSum(keep_count, rank, tile_kept);
    rank += selected_before;
#pragma unroll
    for (int j = 0; j < kItems; ++j) {
      if (!keep[j]) continue;
      const int page = first + j;
      // Only the last page can be partial, and it is the last selected one: slots stay contiguous.
      const int tokens = min(a.page, kv_len - page * a.page);
      for (int i = 0; i < tokens; ++i) indices[rank * a.page + i] = page * a.page + i;
      if (page == n_valid - 1) smem.last_page_selected = 1;
      ++rank;
    }
    ties_before += tile_ties;
    selected_before += tile_kept;
  }
  __syncthreads();
  const int partial = kv_len % a.page;
  const int count =
      selected_before * a.page - (smem.last_page_selected != 0 && partial != 0 ? a.page - partial : 0);
  for (int i = count + tid; i < a.set.capacity; i += kThreads) indices[i] = -1;
  if (tid == 0) a.set.counts[row] = count;
}

}  // namespace

void page_topk(const PageTopkArgs& args, cudaStream_t stream) {
  if (args.page < 1 || args.k_pages < 1 || args.rows < 1 || args.set.sets_per_seq < 1) {
    throw_input_error("page_topk: page {}, k_pages {}, rows {}, sets_per_seq {}: need positive sizes", args.page,
                      args.k_pages, args.rows, args.set.sets_per_seq);
  }
  if (static_cast<int64_t>(args.k_pages) * args.page > args.set.capacity) {
    throw_input_error("page_topk: {} pages of {} tokens do not fit a token set of capacity {}", args.k_pages,
                      args.page, args.set.capacity);
  }
  if (args.scores == nullptr || args.kv_lens == nullptr || args.set.indices == nullptr ||
      args.set.counts == nullptr) {
    throw_input_error("page_topk: a required device pointer is null");
  }
  page_topk_kernel<<<static_cast<unsigned>(args.rows), kThreads, 0, stream>>>(args);
  CUDA_CHECK_LAUNCH();
}

}  // namespace deltainfer::cuda
