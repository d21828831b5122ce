#include "attention/exact_kernel.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "attention/key_row_kernels.h"
#include "core/vector_math.h"

namespace deltainfer::attention {
namespace {

blasint as_blas(int64_t value) { return static_cast<blasint>(value); }

// Row softmax in place over `columns` scores, rejected keys set to exactly 0. Returns the number
// of admitted keys.
int64_t softmax_row(float* scores, int64_t row_pos, const std::vector<KeyRange>& ranges, KeyRule rule) {
  float max_score = -std::numeric_limits<float>::infinity();
  int64_t admitted = 0, column = 0;
  for (const KeyRange& range : ranges) {
    for (int64_t key = range.begin; key < range.end; ++key, ++column) {
      if (rule.admits(row_pos, key)) {
        max_score = std::max(max_score, scores[column]);
        ++admitted;
      } else {
        scores[column] = -std::numeric_limits<float>::infinity();
      }
    }
  }
  if (admitted == 0) {
    std::fill(scores, scores + column, 0.0f);
    return 0;
  }
  // exp(-inf) = 0 for rejected keys (core/vector_math.h keeps that exact).
  const double sum = exp_shifted_in_place(scores, column, max_score);
  const float inverse = static_cast<float>(1.0 / sum);
  for (int64_t c = 0; c < column; ++c) scores[c] *= inverse;
  return admitted;
}

// Calls body(begin, end, first_column) for each run of consecutive keys of `ranges` that stays
// inside one KV page, in range order; first_column counts the keys of the runs before it.
template <typename Body>
void for_each_page_run(const std::vector<KeyRange>& ranges, Body&& body) {
  int64_t column = 0;
  for (const KeyRange& range : ranges) {
    for (int64_t begin = range.begin; begin < range.end;) {
      const int64_t end = page_run_end(begin, range.end);
      body(begin, end, column);
      column += end - begin;
      begin = end;
    }
  }
}

// One query row (decode, and the Δ rows of prefill): scores and outputs read K and V in place,
// one page run at a time (key_row_kernels.h). BLAS would pack K and V into its own buffers for a
// 1-row product, which cost more than the product (a fifth of a SmolLM2 decode step at 512 context).
void score_keys(const KvView& kv, int kv_head, int64_t d, const float* q, const std::vector<KeyRange>& ranges,
                float scale, float* scores) {
  for_each_page_run(ranges, [&](int64_t begin, int64_t end, int64_t column) {
    score_key_run(q, kv.key(kv_head, begin), end - begin, d, scale, scores + column);
  });
}

void accumulate_values(const KvView& kv, int kv_head, int64_t d, const std::vector<KeyRange>& ranges,
                       const float* probabilities, float* out) {
  std::fill(out, out + d, 0.0f);
  for_each_page_run(ranges, [&](int64_t begin, int64_t end, int64_t column) {
    accumulate_value_run(probabilities + column, kv.value(kv_head, begin), end - begin, d, out);
  });
}

// Keys per step of the grouped decode: 16 keys of head_dim 64 are 4 KiB of K (or V), which stay in
// L1 while every head of the group reads them.
constexpr int64_t kGroupKeyStep = 16;

// Calls body(begin, end, column) as for_each_page_run, with each run cut into kGroupKeyStep keys.
template <typename Body>
void for_each_key_step(const std::vector<KeyRange>& ranges, Body&& body) {
  for_each_page_run(ranges, [&](int64_t begin, int64_t end, int64_t column) {
    for (int64_t b = begin; b < end; b += kGroupKeyStep) body(b, std::min(end, b + kGroupKeyStep), column + b - begin);
  });
}

}  // namespace

int64_t range_length(const std::vector<KeyRange>& ranges) {
  int64_t total = 0;
  for (const KeyRange& range : ranges) total += range.end - range.begin;
  return total;
}

std::vector<KeyRange> ranges_from_blocks(const std::vector<int64_t>& sorted_blocks, int64_t block, int64_t limit) {
  std::vector<KeyRange> ranges;
  for (int64_t b : sorted_blocks) {
    const int64_t begin = b * block, end = std::min(limit, begin + block);
    if (begin >= end) continue;
    if (!ranges.empty() && ranges.back().end == begin) {
      ranges.back().end = end;
    } else {
      ranges.push_back({begin, end});
    }
  }
  return ranges;
}

int64_t attend(const HeadShape& shape, const KvView& kv, int head, const QueryRows& rows,
               const std::vector<KeyRange>& ranges, KeyRule rule, const OutputRows& out, KernelScratch& scratch,
               float* probabilities) {
  const int64_t d = shape.head_dim, columns = range_length(ranges);
  const int kv_head = shape.kv_head_of(head);
  if (columns == 0) {
    for (int64_t t = 0; t < rows.count; ++t) std::fill(out.out + t * out.stride, out.out + t * out.stride + d, 0.0f);
    return 0;
  }
  scratch.scores.resize(static_cast<size_t>(rows.count * columns));
  float* scores = scratch.scores.data();
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  if (rows.count == 1) {
    score_keys(kv, kv_head, d, rows.q, ranges, scale, scores);
    const int64_t admitted = softmax_row(scores, rows.first_pos, ranges, rule);
    accumulate_values(kv, kv_head, d, ranges, scores, out.out);
    if (probabilities != nullptr) std::memcpy(probabilities, scores, static_cast<size_t>(columns) * sizeof(float));
    return admitted;
  }
  // Keys are read in runs that stay inside one KV page (one row-major matrix each).
  for_each_page_run(ranges, [&](int64_t begin, int64_t end, int64_t column) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, as_blas(rows.count), as_blas(end - begin), as_blas(d), scale,
                rows.q, as_blas(rows.stride), kv.key(kv_head, begin), as_blas(d), 0.0f, scores + column,
                as_blas(columns));
  });
  int64_t admitted = 0;
  for (int64_t t = 0; t < rows.count; ++t) {
    admitted += softmax_row(scores + t * columns, rows.first_pos + t, ranges, rule);
  }
  for_each_page_run(ranges, [&](int64_t begin, int64_t end, int64_t column) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, as_blas(rows.count), as_blas(d), as_blas(end - begin), 1.0f,
                scores + column, as_blas(columns), kv.value(kv_head, begin), as_blas(d), column == 0 ? 0.0f : 1.0f,
                out.out, as_blas(out.stride));
  });
  if (probabilities != nullptr) {
    std::memcpy(probabilities, scores, static_cast<size_t>(rows.count * columns) * sizeof(float));
  }
  return admitted;
}

}  // namespace deltainfer::attention

namespace deltainfer::attention {

int64_t attend_decode_group(const HeadShape& shape, const KvView& kv, int kv_head, const float* q, int64_t pos,
                            const std::vector<KeyRange>& ranges, KeyRule rule, float* out, KernelScratch& scratch,
                            float* probabilities) {
  const int64_t d = shape.head_dim, columns = range_length(ranges), group = shape.group_size();
  const int first_head = kv_head * shape.group_size();
  if (columns == 0) {
    std::fill(out + first_head * d, out + (first_head + group) * d, 0.0f);
    return 0;
  }
  scratch.scores.resize(static_cast<size_t>(group * columns));
  float* scores = scratch.scores.data();
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  // Scores for the same page-run split as attend(): a key's score does not depend on the run it is in.
  for_each_key_step(ranges, [&](int64_t begin, int64_t end, int64_t column) {
    const float* keys = kv.key(kv_head, begin);
    for (int64_t h = 0; h < group; ++h) {
      score_key_run(q + (first_head + h) * d, keys, end - begin, d, scale, scores + h * columns + column);
    }
  });
  int64_t admitted = 0;
  for (int64_t h = 0; h < group; ++h) admitted += softmax_row(scores + h * columns, pos, ranges, rule);
  std::fill(out + first_head * d, out + (first_head + group) * d, 0.0f);
  for_each_key_step(ranges, [&](int64_t begin, int64_t end, int64_t column) {
    const float* values = kv.value(kv_head, begin);
    for (int64_t h = 0; h < group; ++h) {
      accumulate_value_run(scores + h * columns + column, values, end - begin, d, out + (first_head + h) * d);
    }
  });
  if (probabilities != nullptr) {
    std::memcpy(probabilities + first_head * columns, scores, static_cast<size_t>(group * columns) * sizeof(float));
  }
  return admitted;
}

}  // namespace deltainfer::attention
