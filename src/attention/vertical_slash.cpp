#include "attention/vertical_slash.h"

#include <algorithm>

#include "attention/top_k.h"

namespace deltainfer::attention {

VerticalSlashScores vertical_slash_scores(const HeadShape& shape, const KvView& kv, int head, const QueryRows& rows,
                                          KernelScratch& scratch) {
  const int64_t keys = rows.first_pos + rows.count;
  std::vector<float> probabilities(static_cast<size_t>(rows.count * keys));
  std::vector<float> unused_out(static_cast<size_t>(rows.count * shape.head_dim));
  attend(shape, kv, head, rows, {{0, keys}}, KeyRule{}, {unused_out.data(), shape.head_dim}, scratch,
         probabilities.data());
  VerticalSlashScores scores{std::vector<double>(static_cast<size_t>(keys), 0.0),
                             std::vector<double>(static_cast<size_t>(keys), 0.0)};
  for (int64_t t = 0; t < rows.count; ++t) {
    const int64_t row = rows.first_pos + t;
    const float* p = probabilities.data() + t * keys;
    for (int64_t j = 0; j <= row; ++j) {
      scores.vertical[static_cast<size_t>(j)] += p[j];
      scores.slash[static_cast<size_t>(row - j)] += p[j];
    }
  }
  return scores;
}

VerticalSlashPattern select_vertical_slash(const VerticalSlashScores& scores, const VerticalSlashParams& params) {
  VerticalSlashPattern pattern;
  for (int64_t column : top_k_indices(scores.vertical, params.vertical)) {
    const int64_t block = column / params.block;
    if (pattern.column_blocks.empty() || pattern.column_blocks.back() != block) pattern.column_blocks.push_back(block);
  }
  pattern.offsets = top_k_indices(scores.slash, params.slash);
  return pattern;
}

VerticalSlashPattern estimate_vertical_slash(const HeadShape& shape, const KvView& kv, int head,
                                             const QueryRows& rows, const VerticalSlashParams& params,
                                             KernelScratch& scratch) {
  return select_vertical_slash(vertical_slash_scores(shape, kv, head, rows, scratch), params);
}

std::vector<KeyRange> vertical_slash_ranges(const VerticalSlashPattern& pattern, int64_t block, int64_t i0,
                                            int64_t i1) {
  const int64_t last_block = (i1 - 1) / block;
  std::vector<char> keep(static_cast<size_t>(last_block + 1), 0);
  auto mark = [&](int64_t b) {
    if (b >= 0 && b <= last_block) keep[static_cast<size_t>(b)] = 1;
  };
  mark(0);
  for (int64_t b = i0 / block - 1; b <= last_block; ++b) mark(b);  // the blocks of its rows, and the one before
  for (int64_t b : pattern.column_blocks) mark(b);
  for (int64_t offset : pattern.offsets) {
    if (i1 - 1 - offset < 0) break;  // offsets are sorted: larger ones miss too
    const int64_t first = std::max<int64_t>(0, i0 - offset) / block, last = (i1 - 1 - offset) / block;
    for (int64_t b = first; b <= last; ++b) mark(b);
  }
  std::vector<int64_t> blocks;
  for (int64_t b = 0; b <= last_block; ++b) {
    if (keep[static_cast<size_t>(b)]) blocks.push_back(b);
  }
  return ranges_from_blocks(blocks, block, i1);
}

}  // namespace deltainfer::attention
