#include "attention/token_selection.h"

#include <algorithm>
#include <limits>

#include "attention/top_k.h"

namespace deltainfer::attention {

std::vector<double> unified_token_scores(const float* probabilities, int n_heads, int64_t length,
                                         HeadAggregation aggregation) {
  std::vector<double> scores(static_cast<size_t>(length), 0.0);
  for (int h = 0; h < n_heads; ++h) {
    const float* p = probabilities + int64_t{h} * length;
    for (int64_t j = 0; j < length; ++j) {
      double& u = scores[static_cast<size_t>(j)];
      u = aggregation == HeadAggregation::Max ? std::max(u, double{p[j]}) : u + double{p[j]};
    }
  }
  return scores;
}

std::vector<KeyRange> select_scored_pages(std::vector<double> page_scores, int64_t length,
                                          const PageSelection& selection) {
  const int64_t pages = static_cast<int64_t>(page_scores.size());
  const double forced = std::numeric_limits<double>::infinity();
  const int64_t recent_pages = (selection.recency + selection.page - 1) / selection.page;
  for (int64_t p = std::max<int64_t>(0, pages - recent_pages); p < pages; ++p) page_scores[static_cast<size_t>(p)] = forced;
  if (selection.keep_sink_page && pages > 0) page_scores.front() = forced;
  if (selection.keep_last_page && pages > 0) page_scores.back() = forced;
  const std::vector<int64_t> kept = top_k_indices(page_scores, selection.budget / selection.page);
  return ranges_from_blocks(kept, selection.page, length);
}

std::vector<KeyRange> select_pages(const std::vector<double>& token_scores, int64_t length,
                                   const PageSelection& selection) {
  const int64_t pages = (length + selection.page - 1) / selection.page;
  std::vector<double> page_scores(static_cast<size_t>(pages), 0.0);
  for (int64_t j = 0; j < length; ++j) page_scores[static_cast<size_t>(j / selection.page)] += token_scores[static_cast<size_t>(j)];
  return select_scored_pages(std::move(page_scores), length, selection);
}

}  // namespace deltainfer::attention
