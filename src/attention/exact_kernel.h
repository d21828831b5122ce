#pragma once
// The exact CPU attention kernel every policy runs (the HOW): one query head, a run of
// consecutive query positions, a key set given as disjoint sorted ranges plus a per-row rule.
// Softmax is exact (f32, max-subtracted) over precisely the admitted keys. BLAS does the products.
#include <cstdint>
#include <vector>

#include "attention/kv_view.h"

namespace deltainfer::attention {

struct KeyRange {
  int64_t begin = 0;  // first key position
  int64_t end = 0;    // one past the last
};

// Row at position i admits key j of the ranges iff j <= i and (window == 0 or j < sink or
// j > i - window). Ranges narrow the candidates, the rule is applied exactly per row.
struct KeyRule {
  int64_t sink = 0;
  int64_t window = 0;  // 0: no window

  bool admits(int64_t row, int64_t key) const {
    return key <= row && (window == 0 || key < sink || key > row - window);
  }
};

// Query rows of one head: row t (position first_pos + t) starts at q + t * stride.
struct QueryRows {
  const float* q = nullptr;
  int64_t stride = 0;
  int64_t first_pos = 0;
  int64_t count = 0;
};

struct OutputRows {
  float* out = nullptr;
  int64_t stride = 0;
};

// Reused buffers (one per thread).
struct KernelScratch {
  std::vector<float> scores;
};

// Attends rows of query head `head` over `ranges` under `rule`; writes head_dim outputs per row.
// When `probabilities` is not null it receives the softmax row-major [count][total range length],
// columns in range order (0 for keys the rule rejects). Returns the number of admitted (row, key)
// pairs. A row that admits no key gets a zero output.
int64_t attend(const HeadShape& shape, const KvView& kv, int head, const QueryRows& rows,
               const std::vector<KeyRange>& ranges, KeyRule rule, const OutputRows& out, KernelScratch& scratch,
               float* probabilities = nullptr);

// One decode row of every query head that shares KV head `kv_head` (grouped-query attention), over
// the same ranges and rule: q and out are the row of all heads ([n_heads][head_dim]); the group's
// heads are written. K and V are read once for the group, in runs of a few keys that stay in L1
// while each head scores or accumulates them, instead of once per head. Equal to attend() per head
// bit for bit (same kernels, same order per head). `probabilities`, when not null, is the softmax
// of all heads ([n_heads][range length]); the group's rows are written. Returns admitted pairs.
int64_t attend_decode_group(const HeadShape& shape, const KvView& kv, int kv_head, const float* q, int64_t pos,
                            const std::vector<KeyRange>& ranges, KeyRule rule, float* out, KernelScratch& scratch,
                            float* probabilities = nullptr);

// Total length of the ranges.
int64_t range_length(const std::vector<KeyRange>& ranges);

// Sorted, merged ranges from sorted unit-size blocks of `block` keys, clipped to [0, limit).
std::vector<KeyRange> ranges_from_blocks(const std::vector<int64_t>& sorted_blocks, int64_t block, int64_t limit);

}  // namespace deltainfer::attention
