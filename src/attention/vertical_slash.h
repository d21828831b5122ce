#pragma once
// Vertical-slash block-sparse prefill (MInference-style), estimated online per head.
// Estimate: the last `estimate_queries` queries of the chunk attend densely (causal) to every
// key; summing their softmax probabilities per key column gives the vertical scores, and per
// diagonal offset o = i - j the slash scores. The top `vertical` columns and top `slash` offsets
// are kept (ties to the smaller index). A query block [i0, i1) then attends, in blocks of `block`
// keys, to every block that holds a kept column, every block a kept diagonal crosses within the
// query block, plus the first block (sink) and the local window: every key block its rows fall in
// and the block before the first of them.
// The exact key set of row i is {j <= i : block(j) in those blocks}.
//
// Query blocks are kVerticalSlashQueryBlock rows counted from the chunk's first row (the last one
// may be shorter), the granularity of the GPU block-sparse kernel (cuda::kSparseQueryBlock), so
// the CPU and the GPU attend to the same sets; key blocks are `block` keys from position 0.
#include <cstdint>
#include <vector>

#include "attention/exact_kernel.h"

namespace deltainfer::attention {

inline constexpr int64_t kVerticalSlashQueryBlock = 128;

struct VerticalSlashPattern {
  std::vector<int64_t> column_blocks;  // sorted key blocks that hold a kept column
  std::vector<int64_t> offsets;        // kept diagonal offsets i - j (>= 0), sorted
};

struct VerticalSlashParams {
  int64_t estimate_queries = 64;
  int64_t block = 64;
  int64_t vertical = 1000;
  int64_t slash = 6096;
};

// Summed softmax probabilities of the estimating rows: per key column j and per offset o = i - j,
// both over keys 0..rows.first_pos + rows.count - 1.
struct VerticalSlashScores {
  std::vector<double> vertical;
  std::vector<double> slash;
};

// `rows` are the last queries of the chunk (positions rows.first_pos ..), over keys 0..kv.length-1.
VerticalSlashScores vertical_slash_scores(const HeadShape& shape, const KvView& kv, int head, const QueryRows& rows,
                                          KernelScratch& scratch);

// The top `vertical` columns (as their key blocks) and top `slash` offsets of the scores.
VerticalSlashPattern select_vertical_slash(const VerticalSlashScores& scores, const VerticalSlashParams& params);

// select_vertical_slash(vertical_slash_scores(...), params).
VerticalSlashPattern estimate_vertical_slash(const HeadShape& shape, const KvView& kv, int head,
                                             const QueryRows& rows, const VerticalSlashParams& params,
                                             KernelScratch& scratch);

// Key ranges of the query block [i0, i1) under the pattern, clipped to keys < i1.
std::vector<KeyRange> vertical_slash_ranges(const VerticalSlashPattern& pattern, int64_t block, int64_t i0,
                                            int64_t i1);

}  // namespace deltainfer::attention
