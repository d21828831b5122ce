#include "attention/delta_correction.h"

#include <algorithm>

namespace deltainfer::attention {

StridedRows strided_rows(int64_t gamma, int64_t first_pos, int64_t n) {
  const int64_t first = (first_pos + gamma - 1) / gamma * gamma, end = first_pos + n;
  return {first, first < end ? (end - 1 - first) / gamma + 1 : 0};
}

RowRange dense_tail_rows(const PrefillConfig& config, int64_t first_pos, int64_t n, int64_t prompt_end) {
  const int64_t end = first_pos + n;
  const int64_t begin = std::clamp(prompt_end - config.dense_tail, first_pos, end);
  return {begin, end};
}

void apply_delta_correction(const PrefillConfig& config, int64_t row_width, int64_t first_pos, int64_t n,
                            const float* dense, float* out, DeltaCarry& carry) {
  const int64_t gamma = config.gamma, end = first_pos + n;
  const size_t width = static_cast<size_t>(row_width);
  const StridedRows strided = strided_rows(gamma, first_pos, n);
  std::vector<float> deltas(static_cast<size_t>(strided.count) * width);
  for (int64_t s = 0; s < strided.count; ++s) {
    const float* sparse = out + (strided.first + s * gamma - first_pos) * row_width;
    for (size_t c = 0; c < width; ++c) deltas[static_cast<size_t>(s) * width + c] = dense[static_cast<size_t>(s) * width + c] - sparse[c];
  }
  auto delta_of = [&](int64_t r) -> const float* {
    if (r >= first_pos) return deltas.data() + static_cast<size_t>((r - strided.first) / gamma) * width;
    return carry.row == r ? carry.delta.data() : nullptr;  // unknown: a chunk without its predecessor
  };
  for (int64_t i = first_pos; i < end; ++i) {
    float* row = out + (i - first_pos) * row_width;
    const int64_t r = i / gamma * gamma;
    if (r == i) {
      std::copy(dense + static_cast<size_t>((r - strided.first) / gamma) * width,
                dense + static_cast<size_t>((r - strided.first) / gamma + 1) * width, row);
      continue;
    }
    const float* delta = delta_of(r);
    if (config.variant == DeltaVariant::Recompute || delta == nullptr) continue;
    if (config.variant == DeltaVariant::Interpolate && r + gamma < end) {
      const float* next = delta_of(r + gamma);
      const float t = static_cast<float>(i - r) / static_cast<float>(gamma);
      for (size_t c = 0; c < width; ++c) row[c] += (1.0f - t) * delta[c] + t * next[c];
    } else {
      for (size_t c = 0; c < width; ++c) row[c] += delta[c];
    }
  }
  if (strided.count > 0) {
    carry.row = strided.first + (strided.count - 1) * gamma;
    carry.delta.assign(deltas.end() - static_cast<std::ptrdiff_t>(width), deltas.end());
  }
}

}  // namespace deltainfer::attention
