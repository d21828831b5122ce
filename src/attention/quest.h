#pragma once
// Quest page scoring (METHODS.md section 3): per KV head and page of `page` keys, the element-wise
// min and max of the keys bound q·k from above by sum_d max(q_d min_d, q_d max_d). A page's score
// is that bound maximized over the query heads of the group (so a page any head may need is kept).
#include <cstdint>
#include <vector>

#include "attention/kv_view.h"

namespace deltainfer::attention {

// q: the group's query heads, [group_size][head_dim] contiguous. Returns one score per page of
// keys 0..kv.length-1 (the last page may be partial). Scores are on the q·k scale (not / sqrt(d)).
std::vector<double> quest_page_scores(const HeadShape& shape, const KvView& kv, int kv_head, const float* q,
                                      int64_t page);

}  // namespace deltainfer::attention
