#pragma once
// DELTA's token selection at a Δ-layer (METHODS.md section 2), as pure functions so the CUDA
// select kernel has a twin: unified head scores -> page scores -> one top-k over pages.
#include <cstdint>
#include <vector>

#include "attention/attention_config.h"
#include "attention/exact_kernel.h"

namespace deltainfer::attention {

// u_j = max_h p[h][j] (or the sum over heads) for j < length; probabilities is [n_heads][length].
std::vector<double> unified_token_scores(const float* probabilities, int n_heads, int64_t length,
                                         HeadAggregation aggregation);

struct PageSelection {
  int64_t budget = 0;        // tokens; budget / page pages are kept
  int64_t page = 16;
  int64_t recency = 0;       // tokens; the last ceil(recency / page) pages are forced
  bool keep_sink_page = true;
  bool keep_last_page = false;  // Quest: the page being written
};

// Page scores = sum of the token scores in the page; forced pages score +inf; the top pages
// (ties to earlier pages) come back as sorted, merged key ranges clipped to `length`.
std::vector<KeyRange> select_pages(const std::vector<double>& token_scores, int64_t length,
                                   const PageSelection& selection);

// Same, from scores already summed per page.
std::vector<KeyRange> select_scored_pages(std::vector<double> page_scores, int64_t length,
                                          const PageSelection& selection);

}  // namespace deltainfer::attention
