#include "attention/quest.h"

#include <algorithm>
#include <limits>

namespace deltainfer::attention {

std::vector<double> quest_page_scores(const HeadShape& shape, const KvView& kv, int kv_head, const float* q,
                                      int64_t page) {
  const int64_t d = shape.head_dim, pages = (kv.length + page - 1) / page;
  std::vector<float> lo(static_cast<size_t>(d)), hi(static_cast<size_t>(d));
  std::vector<double> scores(static_cast<size_t>(pages), -std::numeric_limits<double>::infinity());
  for (int64_t p = 0; p < pages; ++p) {
    const int64_t begin = p * page, end = std::min(kv.length, begin + page);
    std::copy(kv.key(kv_head, begin), kv.key(kv_head, begin) + d, lo.begin());
    std::copy(kv.key(kv_head, begin), kv.key(kv_head, begin) + d, hi.begin());
    for (int64_t j = begin + 1; j < end; ++j) {
      const float* key = kv.key(kv_head, j);
      for (int64_t c = 0; c < d; ++c) {
        lo[static_cast<size_t>(c)] = std::min(lo[static_cast<size_t>(c)], key[c]);
        hi[static_cast<size_t>(c)] = std::max(hi[static_cast<size_t>(c)], key[c]);
      }
    }
    for (int g = 0; g < shape.group_size(); ++g) {
      const float* qh = q + int64_t{g} * d;
      double bound = 0;
      for (int64_t c = 0; c < d; ++c) {
        bound += std::max(double{qh[c]} * lo[static_cast<size_t>(c)], double{qh[c]} * hi[static_cast<size_t>(c)]);
      }
      scores[static_cast<size_t>(p)] = std::max(scores[static_cast<size_t>(p)], bound);
    }
  }
  return scores;
}

}  // namespace deltainfer::attention
