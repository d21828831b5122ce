#pragma once
// The WHAT of each policy: the key set of a run of query rows of one head, as ranges + rule.
#include <cstdint>
#include <vector>

#include "attention/exact_kernel.h"

namespace deltainfer::attention {

struct KeySet {
  std::vector<KeyRange> ranges;
  KeyRule rule;
};

// Rows [i0, i1) attending causally to every key.
KeySet dense_keys(int64_t i1);

// Rows [i0, i1) attending to the first `sink` keys and the last `window` keys up to each row.
KeySet sliding_keys(int64_t sink, int64_t window, int64_t i0, int64_t i1);

}  // namespace deltainfer::attention
