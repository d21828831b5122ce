// Prefill policies through CpuAttention on random inputs. Tolerances (f32): 1e-5 absolute between
// two f32 computations of the same attention (BLAS blocking may differ), 1e-4 against the double
// reference.
#include <gtest/gtest.h>

#include "attention/cpu_attention.h"
#include "attention/vertical_slash.h"
#include "attention_test_support.h"

namespace deltainfer::attention {
namespace {

using testing::RandomLayer;

constexpr float kSameTolerance = 1e-5f;
constexpr float kReferenceTolerance = 1e-4f;

// Runs prefill of `length` tokens of layer 0 in chunks of `chunk`.
std::vector<float> prefill(const AttentionConfig& config, const RandomLayer& layer, int64_t length, int64_t chunk,
                           int threads = 2) {
  CpuAttention attention(config, testing::small_model(), threads);
  const int64_t stride = layer.shape.q_row_stride();
  std::vector<float> out(static_cast<size_t>(length * stride));
  for (int64_t start = 0; start < length; start += chunk) {
    const int64_t n = std::min(chunk, length - start);
    attention.prefill(0, layer.q_row(start), n, start, length, layer.kv(start + n), out.data() + start * stride);
  }
  return out;
}

// Without a dense tail unless asked, so that every row shows the Δ rule of METHODS.md.
AttentionConfig sliding(int64_t window, int64_t sink, bool delta, int64_t gamma = 64, int64_t dense_tail = 0) {
  AttentionConfig config;
  config.prefill.kind = PrefillKind::Sliding;
  config.window = window;
  config.sink = sink;
  config.prefill.delta = delta;
  config.prefill.gamma = gamma;
  config.prefill.dense_tail = dense_tail;
  return config;
}

// Dense rows computed one query row at a time, as the Δ pass computes its strided rows: the same
// arithmetic, so the strided rows can be held to 1e-6 (a dense pass in 64-row blocks may differ
// from them by the 1e-5 of kSameTolerance).
std::vector<float> dense_one_row_at_a_time(const RandomLayer& layer, int64_t length) {
  return prefill(AttentionConfig{}, layer, length, /*chunk=*/1);
}

TEST(PrefillPolicy, DenseMatchesReference) {
  std::mt19937 rng(testing::fresh_seed("PrefillPolicy.Dense"));
  const RandomLayer layer(testing::small_model(), 200, rng);
  const std::vector<float> out = prefill(AttentionConfig{}, layer, 200, 200);
  for (int64_t i : {0, 63, 64, 150, 199}) {
    for (int head = 0; head < 6; ++head) {
      const auto want = testing::reference_attention(layer, head, layer.q_row(i) + head * 16, i + 1,
                                                     [](int64_t) { return true; });
      for (int c = 0; c < 16; ++c) {
        ASSERT_NEAR(out[static_cast<size_t>(i * 96 + head * 16 + c)], want[static_cast<size_t>(c)], kReferenceTolerance);
      }
    }
  }
}

TEST(PrefillPolicy, GammaOneIsDense) {
  std::mt19937 rng(testing::fresh_seed("PrefillPolicy.GammaOne"));
  const RandomLayer layer(testing::small_model(), 230, rng);
  const std::vector<float> dense = prefill(AttentionConfig{}, layer, 230, 230);
  const std::vector<float> delta = prefill(sliding(8, 2, true, 1), layer, 230, 230);
  EXPECT_LE(testing::max_abs_diff(dense, delta), kSameTolerance);
}

TEST(PrefillPolicy, WindowCoveringTheContextIsDense) {
  std::mt19937 rng(testing::fresh_seed("PrefillPolicy.WideWindow"));
  const RandomLayer layer(testing::small_model(), 230, rng);
  const std::vector<float> dense = prefill(AttentionConfig{}, layer, 230, 230);
  EXPECT_LE(testing::max_abs_diff(dense, prefill(sliding(230, 0, false), layer, 230, 230)), kSameTolerance);
  EXPECT_LE(testing::max_abs_diff(dense, prefill(sliding(500, 64, true, 16), layer, 230, 230)), kSameTolerance);
}

TEST(PrefillPolicy, SparseDiffersFromDenseWhenTheWindowIsShort) {
  std::mt19937 rng(testing::fresh_seed("PrefillPolicy.ShortWindow"));
  const RandomLayer layer(testing::small_model(), 230, rng);
  EXPECT_GT(testing::max_abs_diff(prefill(AttentionConfig{}, layer, 230, 230), prefill(sliding(16, 4, false), layer, 230, 230)),
            1e-2f);
}

TEST(PrefillPolicy, DeltaRowsEqualDenseRowsAndOtherRowsCarryTheirDelta) {
  std::mt19937 rng(testing::fresh_seed("PrefillPolicy.DeltaRows"));
  const int64_t n = 230, gamma = 32, width = 96;
  const RandomLayer layer(testing::small_model(), n, rng);
  const std::vector<float> dense = dense_one_row_at_a_time(layer, n);
  const std::vector<float> sparse = prefill(sliding(24, 4, false), layer, n, n);
  const std::vector<float> delta = prefill(sliding(24, 4, true, gamma), layer, n, n);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t r = i / gamma * gamma;
    for (int64_t c = 0; c < width; ++c) {
      const size_t at = static_cast<size_t>(i * width + c), at_r = static_cast<size_t>(r * width + c);
      const float want = i == r ? dense[at] : sparse[at] + (dense[at_r] - sparse[at_r]);
      ASSERT_NEAR(delta[at], want, i == r ? 1e-6f : kSameTolerance) << "row " << i;
    }
  }
}

TEST(PrefillPolicy, DenseTailRowsEqualDenseAndTheRowsBeforeKeepTheirDelta) {
  std::mt19937 rng(testing::fresh_seed("PrefillPolicy.DenseTail"));
  const int64_t n = 230, tail = 37, width = 96;
  const RandomLayer layer(testing::small_model(), n, rng);
  const std::vector<float> dense = prefill(AttentionConfig{}, layer, n, n);
  const std::vector<float> without = prefill(sliding(24, 4, true, 32), layer, n, n);
  for (int64_t chunk : {n, int64_t{50}, int64_t{1}}) {
    const std::vector<float> with = prefill(sliding(24, 4, true, 32, tail), layer, n, chunk);
    for (int64_t i = 0; i < n; ++i) {
      const std::vector<float>& want = i >= n - tail ? dense : without;
      for (int64_t c = 0; c < width; ++c) {
        const size_t at = static_cast<size_t>(i * width + c);
        ASSERT_NEAR(with[at], want[at], kSameTolerance) << "row " << i << " chunk " << chunk;
      }
    }
  }
  EXPECT_GT(testing::max_abs_diff(dense, without), 1e-3f);  // the tail is what made those rows dense
}

TEST(PrefillPolicy, RecomputeReplacesOnlyTheStridedRows) {
  std::mt19937 rng(testing::fresh_seed("PrefillPolicy.Recompute"));
  const int64_t n = 200, gamma = 16, width = 96;
  const RandomLayer layer(testing::small_model(), n, rng);
  const std::vector<float> dense = dense_one_row_at_a_time(layer, n);
  const std::vector<float> sparse = prefill(sliding(20, 4, false), layer, n, n);
  AttentionConfig config = sliding(20, 4, true, gamma);
  config.prefill.variant = DeltaVariant::Recompute;
  const std::vector<float> recompute = prefill(config, layer, n, n);
  for (int64_t i = 0; i < n; ++i) {
    const std::vector<float>& want = i % gamma == 0 ? dense : sparse;
    for (int64_t c = 0; c < width; ++c) {
      ASSERT_NEAR(recompute[static_cast<size_t>(i * width + c)], want[static_cast<size_t>(i * width + c)], 1e-6f);
    }
  }
}

TEST(PrefillPolicy, InterpolateBlendsTheDeltasAroundEachRow) {
  std::mt19937 rng(testing::fresh_seed("PrefillPolicy.Interpolate"));
  const int64_t n = 200, gamma = 16, width = 96;
  const RandomLayer layer(testing::small_model(), n, rng);
  const std::vector<float> dense = prefill(AttentionConfig{}, layer, n, n);
  const std::vector<float> sparse = prefill(sliding(20, 4, false), layer, n, n);
  AttentionConfig config = sliding(20, 4, true, gamma);
  config.prefill.variant = DeltaVariant::Interpolate;
  const std::vector<float> blended = prefill(config, layer, n, n);
  auto delta = [&](int64_t row, int64_t c) {
    return dense[static_cast<size_t>(row * width + c)] - sparse[static_cast<size_t>(row * width + c)];
  };
  for (int64_t i = 0; i < n; ++i) {
    const int64_t r = i / gamma * gamma;
    const float t = static_cast<float>(i - r) / static_cast<float>(gamma);
    for (int64_t c = 0; c < width; ++c) {
      const float correction = r + gamma < n ? (1 - t) * delta(r, c) + t * delta(r + gamma, c) : delta(r, c);
      const float want = i == r ? dense[static_cast<size_t>(i * width + c)] : sparse[static_cast<size_t>(i * width + c)] + correction;
      ASSERT_NEAR(blended[static_cast<size_t>(i * width + c)], want, kSameTolerance) << "row " << i;
    }
  }
}

TEST(PrefillPolicy, ChunkedPrefillEqualsPrefillAtOnce) {
  std::mt19937 rng(testing::fresh_seed("PrefillPolicy.Chunks"));
  const int64_t n = 301;
  const RandomLayer layer(testing::small_model(), n, rng);
  AttentionConfig recompute = sliding(40, 4, true, 32);
  recompute.prefill.variant = DeltaVariant::Recompute;
  for (const AttentionConfig& config : {AttentionConfig{}, sliding(40, 4, false), sliding(40, 4, true, 32), recompute}) {
    const std::vector<float> whole = prefill(config, layer, n, n);
    for (int64_t chunk : {1, 7, 50, 64}) {
      EXPECT_LE(testing::max_abs_diff(whole, prefill(config, layer, n, chunk)), kSameTolerance)
          << describe(config) << " chunk " << chunk;
    }
  }
}

TEST(PrefillPolicy, ResultsDoNotDependOnTheThreadCount) {
  std::mt19937 rng(testing::fresh_seed("PrefillPolicy.Threads"));
  const RandomLayer layer(testing::small_model(), 150, rng);
  const AttentionConfig config = sliding(40, 4, true, 32);
  EXPECT_EQ(prefill(config, layer, 150, 150, 1), prefill(config, layer, 150, 150, 3));
}

AttentionConfig vslash(int64_t vertical, int64_t slash, int64_t block) {
  AttentionConfig config;
  config.prefill.kind = PrefillKind::VerticalSlash;
  config.prefill.vertical = vertical;
  config.prefill.slash = slash;
  config.prefill.block = block;
  config.prefill.estimate_queries = 16;
  return config;
}

TEST(PrefillPolicy, VerticalSlashKeepingEverythingIsDense) {
  std::mt19937 rng(testing::fresh_seed("PrefillPolicy.VslashAll"));
  const RandomLayer layer(testing::small_model(), 200, rng);
  EXPECT_LE(testing::max_abs_diff(prefill(AttentionConfig{}, layer, 200, 200), prefill(vslash(200, 200, 16), layer, 200, 200)),
            kSameTolerance);
}

// Rows of the query block [i0, i1) of a chunk at first_pos (pattern estimated from the chunk's
// last 16 rows) attend exactly to the keys vertical_slash_ranges gives for that block.
void expect_vertical_slash_blocks(const RandomLayer& layer, const std::vector<float>& out, int64_t first_pos,
                                  int64_t end, int64_t block, const std::vector<int64_t>& rows) {
  const int head = 4, d = 16;
  KernelScratch scratch;
  const VerticalSlashPattern pattern = estimate_vertical_slash(
      layer.shape, layer.kv(end), head, {layer.q_row(end - 16) + head * d, 96, end - 16, 16}, {16, block, 3, 2}, scratch);
  EXPECT_LE(pattern.column_blocks.size(), 3u);
  EXPECT_EQ(pattern.offsets.size(), 2u);
  for (int64_t i : rows) {
    // Query blocks count kVerticalSlashQueryBlock rows from the chunk's first row.
    const int64_t i0 = first_pos + (i - first_pos) / kVerticalSlashQueryBlock * kVerticalSlashQueryBlock;
    const std::vector<KeyRange> ranges =
        vertical_slash_ranges(pattern, block, i0, std::min(end, i0 + kVerticalSlashQueryBlock));
    auto admits = [&](int64_t j) {
      if (j > i) return false;
      for (const KeyRange& r : ranges) {
        if (j >= r.begin && j < r.end) return true;
      }
      return false;
    };
    EXPECT_TRUE(admits(0) && admits(i));  // sink block and local block
    const auto want = testing::reference_attention(layer, head, layer.q_row(i) + head * d, end, admits);
    for (int c = 0; c < d; ++c) {
      ASSERT_NEAR(out[static_cast<size_t>(i * 96 + head * d + c)], want[static_cast<size_t>(c)], kReferenceTolerance)
          << "row " << i;
    }
  }
}

TEST(PrefillPolicy, VerticalSlashAttendsExactlyItsBlocks) {
  std::mt19937 rng(testing::fresh_seed("PrefillPolicy.VslashBlocks"));
  const int64_t n = 300, block = 16;
  const RandomLayer layer(testing::small_model(), n, rng);
  const std::vector<float> out = prefill(vslash(3, 2, block), layer, n, n);
  expect_vertical_slash_blocks(layer, out, 0, n, block, {5, 100, 127, 128, 255, 256, 299});
}

TEST(PrefillPolicy, VerticalSlashQueryBlocksCountFromTheChunkStart) {
  std::mt19937 rng(testing::fresh_seed("PrefillPolicy.VslashChunk"));
  const int64_t n = 400, chunk = 200, block = 16;
  const RandomLayer layer(testing::small_model(), n, rng);
  const std::vector<float> out = prefill(vslash(3, 2, block), layer, n, chunk);
  // Second chunk [200, 400): query blocks [200, 328) and [328, 400), not multiples of 128.
  expect_vertical_slash_blocks(layer, out, chunk, n, block, {200, 255, 256, 327, 328, 399});
}

}  // namespace
}  // namespace deltainfer::attention
