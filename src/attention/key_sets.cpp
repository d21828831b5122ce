#include "attention/key_sets.h"

#include <algorithm>

namespace deltainfer::attention {

KeySet dense_keys(int64_t i1) { return {{{0, i1}}, KeyRule{}}; }

KeySet sliding_keys(int64_t sink, int64_t window, int64_t i0, int64_t i1) {
  KeySet set;
  set.rule = KeyRule{sink, window};
  const int64_t sink_end = std::min(sink, i1), local_begin = std::max<int64_t>(0, i0 - window + 1);
  if (local_begin <= sink_end) {
    set.ranges.push_back({0, i1});
  } else {
    if (sink_end > 0) set.ranges.push_back({0, sink_end});
    set.ranges.push_back({local_begin, i1});
  }
  return set;
}

}  // namespace deltainfer::attention
