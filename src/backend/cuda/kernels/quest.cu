// Quest (query-aware page selection): per KV head and 16-token page, the element-wise min and max
// of the keys bound q.k from above by sum_d max(q_d min_d, q_d max_d). The bounds live beside the
// paged cache, indexed by physical pool page (4 Quest pages per 64-token pool page), are built
// after a prefill and folded in one token at a time during decode. Selection scores every page
// with the group's query heads (max over them), then page_topk keeps the top pages per KV head.
// FP8 pools: the bounds are of the dequantized keys (code * its slab's scale), which are bf16
// values, so the bf16 bounds stay exact. An FP8 append may rescale its page (core/kv_fp8_page.h),
// which moves the page's earlier keys, so the FP8 append recomputes the bounds of the whole pool
// page from its codes instead of folding one key in.
#include <cuda_bf16.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/delta_decode.h"
#include "backend/cuda/kernels/decode_split.cuh"
#include "backend/cuda/kernels/fp8_convert.cuh"
#include "backend/cuda/page_topk.h"
#include "core/error.h"

namespace deltainfer::cuda {
namespace {

constexpr int kSubPages = kKvPageSize / kQuestPage;
constexpr int kScoreWarps = 8;
constexpr int kPagesPerBlock = 64;
constexpr int kMaxGroup = 16;

__device__ __forceinline__ size_t bounds_offset(int pool_page, int n_kv_heads, int kv_head, int sub, int head_dim) {
  return ((static_cast<size_t>(pool_page) * n_kv_heads + kv_head) * kSubPages + sub) * 2 * head_dim;
}

__device__ __forceinline__ size_t key_offset(int pool_page, int n_kv_heads, int kv_head, int slot, int head_dim) {
  return ((static_cast<size_t>(pool_page) * n_kv_heads + kv_head) * kKvPageSize + slot) * head_dim;
}

// Key d of row `slot` of the (pool_page, kv_head) slab as the attention kernels read it: a bf16
// value, or an e4m3 code times its slab's scale.
template <typename Kv>
__device__ __forceinline__ float key_value(const PagedKv& kv, int pool_page, int kv_head, int slot, int d) {
  const size_t i = key_offset(pool_page, kv.n_kv_heads, kv_head, slot, kv.head_dim) + d;
  if constexpr (Kv::kFp8) {
    return e4m3_to_float(static_cast<const uint8_t*>(kv.k_pool)[i]) *
           kv.k_scales[static_cast<size_t>(pool_page) * kv.n_kv_heads + kv_head];
  } else {
    return __bfloat162float(static_cast<const __nv_bfloat16*>(kv.k_pool)[i]);
  }
}

// grid: (pool pages of the longest sequence, batch * n_kv_heads); block: (head_dim, kSubPages).
// kLastPage: grid.x is 1 and the block rebuilds the pool page holding position kv_len - 1.
template <typename Kv, bool kLastPage>
__global__ void quest_build_kernel(const QuestCache c) {
  const int seq = static_cast<int>(blockIdx.y) / c.kv.n_kv_heads;
  const int kv_head = static_cast<int>(blockIdx.y) % c.kv.n_kv_heads;
  const int d = static_cast<int>(threadIdx.x);
  const int sub = static_cast<int>(threadIdx.y);
  const int kv_len = c.kv.kv_lens[seq];
  if (kLastPage && kv_len == 0) return;
  const int logical = kLastPage ? (kv_len - 1) / kKvPageSize : static_cast<int>(blockIdx.x);
  const int begin = logical * kKvPageSize + sub * kQuestPage;
  if (begin >= kv_len) return;
  const int end = min(kv_len, begin + kQuestPage);
  const int pool_page = c.kv.page_table[static_cast<size_t>(seq) * c.kv.page_table_stride + logical];
  float lo = INFINITY;
  float hi = -INFINITY;
  for (int t = begin; t < end; ++t) {
    const float k = key_value<Kv>(c.kv, pool_page, kv_head, t % kKvPageSize, d);
    lo = fminf(lo, k);
    hi = fmaxf(hi, k);
  }
  __nv_bfloat16* bounds = c.bounds + bounds_offset(pool_page, c.kv.n_kv_heads, kv_head, sub, c.kv.head_dim);
  bounds[d] = __float2bfloat16(lo);  // min and max of bf16-representable keys are bf16 values: exact
  bounds[c.kv.head_dim + d] = __float2bfloat16(hi);
}

// grid: batch * n_kv_heads; block: head_dim.
__global__ void quest_append_kernel(const QuestCache c) {
  const int seq = static_cast<int>(blockIdx.x) / c.kv.n_kv_heads;
  const int kv_head = static_cast<int>(blockIdx.x) % c.kv.n_kv_heads;
  const int d = static_cast<int>(threadIdx.x);
  const int position = c.kv.kv_lens[seq] - 1;
  if (position < 0) return;
  const int pool_page = c.kv.page_table[static_cast<size_t>(seq) * c.kv.page_table_stride + position / kKvPageSize];
  const int slot = position % kKvPageSize;
  const auto* keys = static_cast<const __nv_bfloat16*>(c.kv.k_pool);
  const __nv_bfloat16 k = keys[key_offset(pool_page, c.kv.n_kv_heads, kv_head, slot, c.kv.head_dim) + d];
  __nv_bfloat16* bounds =
      c.bounds + bounds_offset(pool_page, c.kv.n_kv_heads, kv_head, slot / kQuestPage, c.kv.head_dim);
  const bool first = slot % kQuestPage == 0;
  bounds[d] = first ? k : __hmin(bounds[d], k);
  bounds[c.kv.head_dim + d] = first ? k : __hmax(bounds[c.kv.head_dim + d], k);
}

struct QuestScoreParams {
  const __nv_bfloat16* q;
  QuestCache cache;
  int n_heads;
  int group;
  int recency;
  int keep_sink;
  float* page_scores;  // [batch][n_kv_heads][max_pages]
  int max_pages;
};

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

// grid: (ceil(max_pages / kPagesPerBlock), batch * n_kv_heads); block: kScoreWarps warps, one warp
// per page, each lane kDims consecutive dimensions.
template <int kHeadDim>
__global__ void __launch_bounds__(kScoreWarps * 32) quest_score_kernel(const QuestScoreParams p) {
  constexpr int kDims = kHeadDim / 32;
  __shared__ float q_smem[kMaxGroup][kHeadDim];
  const int row = static_cast<int>(blockIdx.y);
  const int seq = row / p.cache.kv.n_kv_heads;
  const int kv_head = row % p.cache.kv.n_kv_heads;
  const int lane = static_cast<int>(threadIdx.x) % 32;
  const int warp = static_cast<int>(threadIdx.x) / 32;
  const __nv_bfloat16* q = p.q + (static_cast<size_t>(seq) * p.n_heads + kv_head * p.group) * kHeadDim;
  for (int i = static_cast<int>(threadIdx.x); i < p.group * kHeadDim; i += kScoreWarps * 32) {
    q_smem[i / kHeadDim][i % kHeadDim] = __bfloat162float(q[i]);
  }
  __syncthreads();

  const int kv_len = p.cache.kv.kv_lens[seq];
  const int n_valid = (kv_len + kQuestPage - 1) / kQuestPage;
  const int first_recent = max(0, (kv_len + kQuestPage - 1) / kQuestPage - (p.recency + kQuestPage - 1) / kQuestPage);
  const int32_t* pages = p.cache.kv.page_table + static_cast<size_t>(seq) * p.cache.kv.page_table_stride;
  const int block_first = static_cast<int>(blockIdx.x) * kPagesPerBlock;
  for (int page = block_first + warp; page < min(n_valid, block_first + kPagesPerBlock); page += kScoreWarps) {
    float* out = p.page_scores + static_cast<size_t>(row) * p.max_pages + page;
    if ((p.keep_sink != 0 && page == 0) || page >= first_recent) {
      if (lane == 0) *out = INFINITY;
      continue;
    }
    const __nv_bfloat16* bounds =
        p.cache.bounds + bounds_offset(pages[page / kSubPages], p.cache.kv.n_kv_heads, kv_head, page % kSubPages,
                                       kHeadDim) + lane * kDims;
    float lo[kDims];
    float hi[kDims];
#pragma unroll
    for (int i = 0; i < kDims; ++i) {
      lo[i] = __bfloat162float(bounds[i]);
      hi[i] = __bfloat162float(bounds[kHeadDim + i]);
    }
    float best = -INFINITY;
    for (int g = 0; g < p.group; ++g) {
      float partial = 0.0f;
#pragma unroll
      for (int i = 0; i < kDims; ++i) {
        const float qd = q_smem[g][lane * kDims + i];
        partial += fmaxf(qd * lo[i], qd * hi[i]);
      }
      best = fmaxf(best, warp_sum(partial));
    }
    if (lane == 0) *out = best;
  }
}

void validate_cache(const char* what, const QuestCache& c) {
  validate_paged_kv(what, c.kv, PagedKvReads{false, true});
  if (c.kv.head_dim != 64 && c.kv.head_dim != 128) {
    throw_input_error("{}: head_dim {} is not supported (64 or 128)", what, c.kv.head_dim);
  }
  if (c.bounds == nullptr) throw_input_error("{}: the bounds pointer is null", what);
}

}  // namespace

size_t quest_bounds_elements(int num_pool_pages, int n_kv_heads, int head_dim) {
  return static_cast<size_t>(num_pool_pages) * n_kv_heads * kSubPages * 2 * head_dim;
}

void quest_build_bounds(const QuestCache& cache, cudaStream_t stream) {
  validate_cache("quest_build_bounds", cache);
  if (cache.kv.max_kv_len == 0) return;
  const dim3 grid(static_cast<unsigned>((cache.kv.max_kv_len + kKvPageSize - 1) / kKvPageSize),
                  static_cast<unsigned>(cache.kv.batch * cache.kv.n_kv_heads));
  const dim3 block(static_cast<unsigned>(cache.kv.head_dim), kSubPages);
  split_kv::with_kv_type(cache.kv.dtype, [&](auto kv) {
    quest_build_kernel<decltype(kv), false><<<grid, block, 0, stream>>>(cache);
  });
  CUDA_CHECK_LAUNCH();
}

void quest_append_bounds(const QuestCache& cache, cudaStream_t stream) {
  validate_cache("quest_append_bounds", cache);
  const auto rows = static_cast<unsigned>(cache.kv.batch * cache.kv.n_kv_heads);
  if (cache.kv.dtype == KvDtype::Fp8E4m3) {
    quest_build_kernel<split_kv::Fp8Kv, true>
        <<<dim3(1, rows), dim3(static_cast<unsigned>(cache.kv.head_dim), kSubPages), 0, stream>>>(cache);
  } else {
    quest_append_kernel<<<rows, static_cast<unsigned>(cache.kv.head_dim), 0, stream>>>(cache);
  }
  CUDA_CHECK_LAUNCH();
}

QuestSelectPlan plan_quest_select(int batch, int n_heads, int n_kv_heads, int head_dim, int max_kv_len,
                                  const PageSelectConfig& config) {
  split_kv::validate_shape("quest_select", batch, n_heads, n_kv_heads, head_dim, max_kv_len);
  if (config.page != kQuestPage) {
    throw_input_error("quest_select: page {}; Quest pages are {} tokens", config.page, kQuestPage);
  }
  token_set_capacity(config);  // validates budget and recency
  QuestSelectPlan plan;
  plan.max_pages = std::max(1, (max_kv_len + kQuestPage - 1) / kQuestPage);
  plan.page_scores_offset = 0;
  plan.workspace_bytes =
      split_kv::align_256(static_cast<size_t>(batch) * n_kv_heads * plan.max_pages * sizeof(float));
  return plan;
}

void quest_select(const __nv_bfloat16* q, int n_heads, const QuestCache& cache, const PageSelectConfig& config,
                  void* workspace, size_t workspace_bytes, const TokenSet& set, cudaStream_t stream) {
  validate_cache("quest_select", cache);
  const QuestSelectPlan plan =
      plan_quest_select(cache.kv.batch, n_heads, cache.kv.n_kv_heads, cache.kv.head_dim, cache.kv.max_kv_len, config);
  if (workspace == nullptr || workspace_bytes < plan.workspace_bytes) {
    throw_input_error("quest_select: workspace of {} bytes, {} needed", workspace_bytes, plan.workspace_bytes);
  }
  if (q == nullptr || set.sets_per_seq != cache.kv.n_kv_heads || set.capacity < token_set_capacity(config)) {
    throw_input_error("quest_select: token set with {} sets per sequence and capacity {}; need n_kv_heads ({}) "
                      "and >= {} (and a query)",
                      set.sets_per_seq, set.capacity, cache.kv.n_kv_heads, token_set_capacity(config));
  }
  QuestScoreParams p{};
  p.q = q;
  p.cache = cache;
  p.n_heads = n_heads;
  p.group = n_heads / cache.kv.n_kv_heads;
  p.recency = config.recency;
  p.keep_sink = config.keep_sink ? 1 : 0;
  p.page_scores = static_cast<float*>(workspace);
  p.max_pages = plan.max_pages;
  const dim3 grid(static_cast<unsigned>((plan.max_pages + kPagesPerBlock - 1) / kPagesPerBlock),
                  static_cast<unsigned>(cache.kv.batch * cache.kv.n_kv_heads));
  if (cache.kv.head_dim == 64) {
    quest_score_kernel<64><<<grid, kScoreWarps * 32, 0, stream>>>(p);
  } else {
    quest_score_kernel<128><<<grid, kScoreWarps * 32, 0, stream>>>(p);
  }
  CUDA_CHECK_LAUNCH();

  PageTopkArgs topk;
  topk.scores = p.page_scores;
  topk.score_stride = plan.max_pages;
  topk.rows = cache.kv.batch * cache.kv.n_kv_heads;
  topk.kv_lens = cache.kv.kv_lens;
  topk.page = kQuestPage;
  topk.k_pages = config.budget / kQuestPage;
  topk.set = set;
  page_topk(topk, stream);
}

}  // namespace deltainfer::cuda
