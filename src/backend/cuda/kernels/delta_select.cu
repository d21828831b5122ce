// DELTA selection at a Δ-layer: the dense decode pass also writes the scaled logits of every
// token (decode_attention's `logits` option); once its combine has the final log-sum-exp, the
// page-score kernel turns them into exact probabilities p_{h,j} = exp(logit - lse_h), reduces them
// over all query heads (max, or sum), sums them over each selection page and forces the sink and
// recency pages to +inf; page_topk then keeps the top budget/page pages in position order.
// Reading the logits back (n_heads × 4 bytes per token) costs ~3% of the dense pass's KV bytes;
// recomputing q·k would read K again (half of them).
#include <cuda_bf16.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/delta_decode.h"
#include "backend/cuda/kernels/decode_split.cuh"
#include "backend/cuda/page_topk.h"
#include "backend/cuda/rank_collectives.h"
#include "core/error.h"

namespace deltainfer::cuda {
namespace {

constexpr int kScoreThreads = 256;  // tokens per tile when the page divides it
constexpr int kMaxPage = 1024;
constexpr int kMaxHeads = 128;
constexpr float kLog2e = 1.4426950408889634f;

struct PageScoreParams {
  const float* logits;  // [batch][n_heads][logits_stride], log2 units
  int logits_stride;
  const float* lse;     // [batch][n_heads], natural log
  const int32_t* kv_lens;
  int n_heads;
  int page;
  int tile_pages;       // pages per block
  int recency;
  int keep_sink;
  int sum_heads;
  float* page_scores;   // [batch][max_pages]
  int max_pages;
};

// grid: (ceil(max_pages / tile_pages), batch). A thread owns a token and walks the heads (each
// step of a warp reads 128 contiguous bytes of one head's row), then threads sum their pages.
__global__ void __launch_bounds__(kScoreThreads) delta_page_score_kernel(const PageScoreParams p) {
  __shared__ float lse2[kMaxHeads];
  __shared__ float unified[kMaxPage];
  const int seq = static_cast<int>(blockIdx.y);
  const int tid = static_cast<int>(threadIdx.x);
  const int kv_len = p.kv_lens[seq];
  const int first_page = static_cast<int>(blockIdx.x) * p.tile_pages;
  const int begin = first_page * p.page;
  if (begin >= kv_len) return;
  const int tokens = min(p.tile_pages * p.page, kv_len - begin);
  for (int h = tid; h < p.n_heads; h += kScoreThreads) {
    lse2[h] = p.lse[static_cast<size_t>(seq) * p.n_heads + h] * kLog2e;
  }
  __syncthreads();
  const float* logits = p.logits + static_cast<size_t>(seq) * p.n_heads * p.logits_stride + begin;
  for (int t = tid; t < tokens; t += kScoreThreads) {
    float u = 0.0f;
    for (int h = 0; h < p.n_heads; ++h) {
      const float prob = exp2f(__ldg(logits + static_cast<size_t>(h) * p.logits_stride + t) - lse2[h]);
      u = p.sum_heads != 0 ? u + prob : fmaxf(u, prob);
    }
    unified[t] = u;
  }
  __syncthreads();
  // METHODS.md: the last ceil(recency / page) pages are kept (as the CPU twin does).
  const int first_recent = max(0, (kv_len + p.page - 1) / p.page - (p.recency + p.page - 1) / p.page);
  for (int i = tid; i < p.tile_pages; i += kScoreThreads) {
    const int page = first_page + i;
    const int page_begin = i * p.page;
    if (page_begin >= tokens || page >= p.max_pages) continue;
    float score = 0.0f;
    for (int t = page_begin; t < min(tokens, page_begin + p.page); ++t) score += unified[t];
    const bool forced = (p.keep_sink != 0 && page == 0) || page >= first_recent;
    p.page_scores[static_cast<size_t>(seq) * p.max_pages + page] = forced ? INFINITY : score;
  }
}

void validate_config(const char* what, const PageSelectConfig& c) {
  if (c.page < 1 || c.page > kMaxPage || c.budget < c.page || c.recency < 0) {
    throw_input_error("{}: budget {}, page {}, recency {}: need page in [1, {}], budget >= page, recency >= 0", what,
                      c.budget, c.page, c.recency, kMaxPage);
  }
}

}  // namespace

int token_set_capacity(const PageSelectConfig& config) {
  validate_config("token_set_capacity", config);
  return config.budget / config.page * config.page;
}

DeltaSelectPlan plan_delta_select(int batch, int n_heads, int n_kv_heads, int head_dim, int max_kv_len,
                                  const PageSelectConfig& config, int sm_count) {
  validate_config("plan_delta_select", config);
  if (n_heads > kMaxHeads) {
    throw_input_error("plan_delta_select: {} query heads; DELTA selection supports at most {}", n_heads,
                      kMaxHeads);
  }
  DeltaSelectPlan plan;
  plan.dense = plan_decode_attention(batch, n_heads, n_kv_heads, head_dim, max_kv_len, sm_count);
  plan.logits_stride = std::max(1, max_kv_len);
  plan.max_pages = std::max(1, (max_kv_len + config.page - 1) / config.page);
  plan.logits_offset = split_kv::align_256(plan.dense.workspace_bytes);
  plan.page_scores_offset =
      plan.logits_offset +
      split_kv::align_256(static_cast<size_t>(batch) * plan.logits_stride * n_heads * sizeof(float));
  plan.workspace_bytes =
      plan.page_scores_offset + split_kv::align_256(static_cast<size_t>(batch) * plan.max_pages * sizeof(float));
  return plan;
}

void delta_decode_select(const DecodeAttentionArgs& dense, const PageSelectConfig& config, void* workspace,
                         size_t workspace_bytes, const TokenSet& set, cudaStream_t stream) {
  const DeltaSelectPlan plan = plan_delta_select(dense.kv.batch, dense.n_heads, dense.kv.n_kv_heads, dense.kv.head_dim,
                                                 dense.kv.max_kv_len, config, current_device_sm_count());
  if (workspace == nullptr || workspace_bytes < plan.workspace_bytes) {
    throw_input_error("delta_decode_select: workspace of {} bytes, {} needed", workspace_bytes,
                      plan.workspace_bytes);
  }
  if (dense.lse == nullptr) throw_input_error("delta_decode_select: the dense pass needs an lse output");
  if (set.sets_per_seq != 1 || set.capacity < token_set_capacity(config)) {
    throw_input_error("delta_decode_select: token set with {} sets per sequence and capacity {}; need 1 and >= {}",
                      set.sets_per_seq, set.capacity, token_set_capacity(config));
  }
  char* base = static_cast<char*>(workspace);
  DecodeAttentionArgs pass = dense;
  pass.workspace = base;
  pass.workspace_bytes = plan.dense.workspace_bytes;
  pass.num_splits = 0;
  pass.logits = reinterpret_cast<float*>(base + plan.logits_offset);
  pass.logits_stride = plan.logits_stride;
  decode_attention(pass, stream);

  PageScoreParams p{};
  p.logits = pass.logits;
  p.logits_stride = plan.logits_stride;
  p.lse = dense.lse;
  p.kv_lens = dense.kv.kv_lens;
  p.n_heads = dense.n_heads;
  p.page = config.page;
  p.recency = config.recency;
  p.keep_sink = config.keep_sink ? 1 : 0;
  p.sum_heads = config.head_reduce == HeadReduce::kSum ? 1 : 0;
  p.page_scores = reinterpret_cast<float*>(base + plan.page_scores_offset);
  p.max_pages = plan.max_pages;
  p.tile_pages = std::max(1, kScoreThreads / config.page);
  const dim3 grid(static_cast<unsigned>((plan.max_pages + p.tile_pages - 1) / p.tile_pages),
                  static_cast<unsigned>(dense.kv.batch));
  delta_page_score_kernel<<<grid, kScoreThreads, 0, stream>>>(p);
  CUDA_CHECK_LAUNCH();
  // Tensor parallel: each rank scored its own heads; reduce the scores over the ranks the way the
  // heads are reduced (max or sum), so every rank selects the same token set.
  if (const CurrentRank& rank = current_rank(); rank.collectives != nullptr) {
    const int64_t count = int64_t{dense.kv.batch} * plan.max_pages;
    if (p.sum_heads) {
      rank.collectives->sum(rank.rank, p.page_scores, count, stream);
    } else {
      rank.collectives->max(rank.rank, p.page_scores, count, stream);
    }
  }

  PageTopkArgs topk;
  topk.scores = p.page_scores;
  topk.score_stride = plan.max_pages;
  topk.rows = dense.kv.batch;
  topk.kv_lens = dense.kv.kv_lens;
  topk.page = config.page;
  topk.k_pages = config.budget / config.page;
  topk.set = set;
  page_topk(topk, stream);
}

}  // namespace deltainfer::cuda
