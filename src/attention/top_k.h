#pragma once
// Indices of the k largest scores, ties to the smaller index, returned in increasing index order.
#include <algorithm>
#include <cstdint>
#include <numeric>
#include <vector>

namespace deltainfer::attention {

inline std::vector<int64_t> top_k_indices(const std::vector<double>& scores, int64_t k) {
  std::vector<int64_t> order(scores.size());
  std::iota(order.begin(), order.end(), int64_t{0});
  const auto keep = static_cast<std::ptrdiff_t>(std::clamp<int64_t>(k, 0, static_cast<int64_t>(order.size())));
  std::partial_sort(order.begin(), order.begin() + keep, order.end(), [&](int64_t a, int64_t b) {
    const double sa = scores[static_cast<size_t>(a)], sb = scores[static_cast<size_t>(b)];
    return sa > sb || (sa == sb && a < b);
  });
  order.resize(static_cast<size_t>(keep));
  std::sort(order.begin(), order.end());
  return order;
}

}  // namespace deltainfer::attention
