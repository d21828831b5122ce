#pragma once
// Vertical-slash block-sparse prefill (MInference-style), estimated online per head.
// Estimate: the last `estimate_queries` queries of the chunk attend densely (causal) to every
// key; summing their softmax probabilities per key column gives the vertical scores, and per
// diagonal offset o = i - j the slash scores. The top `vertical` columns and top `slash` offsets
// are kept (ties to the smaller index). A query block [i0, i1) then attends, in blocks of `block`
// keys, to every block that holds a kept column, every block a kept diagonal crosses within the
// query block, plus the first block (sink) and its own and the previous block (local window).
// The exact key set of row i is {j <= i : block(j) in those blocks}.
#include <cstdint>
#include <vector>

#include "attention/exact_kernel.h"

namespace deltainfer::attention {

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

// `rows` are the last queries of the chunk (positions rows.first_pos ..), over keys 0..kv.length-1.
VerticalSlashPattern estimate_vertical_slash(const HeadShape& shape, const KvView& kv, int head,
                                             const QueryRows& rows, const VerticalSlashParams& params,
                                             KernelScratch& scratch);

// Key ranges of the query block [i0, i1) under the pattern, clipped to keys < i1.
std::vector<KeyRange> vertical_slash_ranges(const VerticalSlashPattern& pattern, int64_t block, int64_t i0,
                                            int64_t i1);

}  // namespace deltainfer::attention
