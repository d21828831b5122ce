// The exact kernel against a naive double-precision softmax over the same explicit key set.
// Tolerance: 1e-4 absolute on outputs of unit scale (f32 products and sums over <= 300 keys).
#include "attention/exact_kernel.h"

#include <gtest/gtest.h>

#include "attention/key_sets.h"
#include "attention_test_support.h"

namespace deltainfer::attention {
namespace {

using testing::RandomLayer;

constexpr float kTolerance = 1e-4f;

void expect_matches_reference(const RandomLayer& layer, int64_t length, const KeySet& set, int64_t i0, int64_t i1,
                              int head) {
  const int d = layer.shape.head_dim;
  const int64_t stride = layer.shape.q_row_stride();
  std::vector<float> out(static_cast<size_t>((i1 - i0) * d));
  KernelScratch scratch;
  const int64_t admitted = attend(layer.shape, layer.kv(length), head, {layer.q_row(i0) + head * d, stride, i0, i1 - i0},
                                  set.ranges, set.rule, {out.data(), d}, scratch);
  int64_t want_admitted = 0;
  for (int64_t i = i0; i < i1; ++i) {
    auto admits = [&](int64_t j) {
      for (const KeyRange& r : set.ranges) {
        if (j >= r.begin && j < r.end) return set.rule.admits(i, j);
      }
      return false;
    };
    for (int64_t j = 0; j < length; ++j) want_admitted += admits(j) ? 1 : 0;
    const std::vector<double> want = testing::reference_attention(layer, head, layer.q_row(i) + head * d, length, admits);
    for (int c = 0; c < d; ++c) {
      ASSERT_NEAR(out[static_cast<size_t>((i - i0) * d + c)], want[static_cast<size_t>(c)], kTolerance)
          << "row " << i << " head " << head << " dim " << c;
    }
  }
  EXPECT_EQ(admitted, want_admitted);
}

TEST(ExactKernel, DenseCausalMatchesReferenceForEveryHead) {
  std::mt19937 rng(testing::fresh_seed("ExactKernel.DenseCausal"));
  const RandomLayer layer(testing::small_model(), 150, rng);
  for (int head = 0; head < layer.shape.n_heads; ++head) {
    expect_matches_reference(layer, 150, dense_keys(150), 70, 150, head);
    expect_matches_reference(layer, 150, dense_keys(1), 0, 1, head);
  }
}

// One query row takes its own path (dot/axpy over K and V in place, no BLAS): every length around
// the KV page boundary (kKvPageTokens = 64), dense and windowed.
TEST(ExactKernel, OneRowMatchesReferenceAcrossPageBoundaries) {
  std::mt19937 rng(testing::fresh_seed("ExactKernel.OneRow"));
  const RandomLayer layer(testing::small_model(), 200, rng);
  for (int64_t length : {1, 2, 63, 64, 65, 129, 200}) {
    for (int head = 0; head < layer.shape.n_heads; ++head) {
      expect_matches_reference(layer, length, dense_keys(length), length - 1, length, head);
      KeySet windowed = dense_keys(length);
      windowed.rule = KeyRule{3, 40};
      expect_matches_reference(layer, length, windowed, length - 1, length, head);
    }
  }
}

TEST(ExactKernel, SlidingWindowWithSinkMatchesReference) {
  std::mt19937 rng(testing::fresh_seed("ExactKernel.Sliding"));
  const RandomLayer layer(testing::small_model(), 300, rng);
  expect_matches_reference(layer, 300, sliding_keys(4, 37, 200, 264), 200, 264, 1);
  expect_matches_reference(layer, 300, sliding_keys(4, 37, 0, 64), 0, 64, 5);
  expect_matches_reference(layer, 300, sliding_keys(0, 1, 100, 120), 100, 120, 3);  // only itself
}

TEST(ExactKernel, DisjointRangesAndProbabilities) {
  std::mt19937 rng(testing::fresh_seed("ExactKernel.Ranges"));
  const RandomLayer layer(testing::small_model(), 200, rng);
  const KeySet set{{{0, 16}, {48, 80}, {160, 200}}, KeyRule{}};
  expect_matches_reference(layer, 200, set, 199, 200, 4);
  std::vector<float> out(16), probabilities(static_cast<size_t>(range_length(set.ranges)));
  KernelScratch scratch;
  attend(layer.shape, layer.kv(200), 4, {layer.q_row(199) + 4 * 16, 96, 199, 1}, set.ranges, set.rule, {out.data(), 16},
         scratch, probabilities.data());
  double total = 0;
  for (float p : probabilities) total += p;
  EXPECT_NEAR(total, 1.0, 1e-5);
}

// The grouped decode (one task per KV head) against attend() per head, bit for bit: outputs,
// probabilities and admitted counts, at lengths around the page (64) and key-step (16) edges, dense
// and windowed, head dims of the packaged models' shape (64) and of the small test model (16).
TEST(ExactKernel, GroupedDecodeEqualsAttendPerHead) {
  std::mt19937 rng(testing::fresh_seed("ExactKernel.GroupedDecode"));
  for (int head_dim : {16, 64}) {
    const RandomLayer layer(testing::small_model(6, 9, 3, head_dim), 200, rng);
    const HeadShape& shape = layer.shape;
    for (int64_t length : {1, 15, 16, 17, 64, 65, 130, 200}) {
      for (KeyRule rule : {KeyRule{}, KeyRule{3, 40}}) {
        const int64_t pos = length - 1;
        const std::vector<KeyRange> ranges{{0, length}};
        std::vector<float> grouped(static_cast<size_t>(shape.q_row_stride())), per_head(grouped.size());
        std::vector<float> grouped_p(static_cast<size_t>(shape.n_heads * length), -1.0f), per_head_p(grouped_p.size());
        KernelScratch scratch;
        int64_t grouped_admitted = 0, per_head_admitted = 0;
        for (int g = 0; g < shape.n_kv_heads; ++g) {
          grouped_admitted += attend_decode_group(shape, layer.kv(length), g, layer.q_row(pos), pos, ranges, rule,
                                                  grouped.data(), scratch, grouped_p.data());
        }
        for (int h = 0; h < shape.n_heads; ++h) {
          per_head_admitted += attend(shape, layer.kv(length), h, {layer.q_row(pos) + h * head_dim, head_dim, pos, 1},
                                      ranges, rule, {per_head.data() + h * head_dim, head_dim}, scratch,
                                      per_head_p.data() + h * length);
        }
        EXPECT_EQ(grouped, per_head) << "head_dim " << head_dim << " length " << length << " window " << rule.window;
        EXPECT_EQ(grouped_p, per_head_p) << "head_dim " << head_dim << " length " << length;
        EXPECT_EQ(grouped_admitted, per_head_admitted);
      }
    }
  }
}

TEST(ExactKernel, RangesFromBlocksMergeAndClip) {
  const std::vector<KeyRange> ranges = ranges_from_blocks({0, 1, 3, 4}, 16, 70);
  ASSERT_EQ(ranges.size(), 2u);
  EXPECT_EQ(ranges[0].begin, 0);
  EXPECT_EQ(ranges[0].end, 32);
  EXPECT_EQ(ranges[1].begin, 48);
  EXPECT_EQ(ranges[1].end, 70);
}

}  // namespace
}  // namespace deltainfer::attention
