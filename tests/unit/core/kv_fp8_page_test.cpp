// The FP8 page format's CPU twin: power-of-two scales, the stated error bounds over one and over
// many appends, rescaling, non-finite values, pages reused from earlier sequences.
#include "core/kv_fp8_page.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include "core/error.h"
#include "core/fp8_e4m3.h"
#include "core/kv_page.h"

namespace deltainfer {
namespace {

constexpr int kHeadDim = 64;
constexpr int kRows = static_cast<int>(kKvPageTokens);

std::vector<float> random_rows(std::mt19937& rng, int n_rows, float magnitude) {
  std::normal_distribution<float> normal(0.0f, magnitude);
  std::vector<float> rows(static_cast<size_t>(n_rows) * kHeadDim);
  for (float& value : rows) value = normal(rng);
  return rows;
}

struct Slab {
  std::vector<uint8_t> codes = std::vector<uint8_t>(static_cast<size_t>(kRows) * kHeadDim, kFp8E4m3Nan);
  float scale = std::numeric_limits<float>::quiet_NaN();
  Fp8PageSlab view() { return {codes.data(), &scale, kHeadDim}; }
  float value(size_t i) const { return fp8_e4m3_decode(codes[i]) * scale; }
};

// The header's bound: 2^-4 |x| plus 2^-10 s (2^-9 s after a rescale).
void expect_within_bound(const Slab& slab, const std::vector<float>& rows, float subnormal_steps) {
  for (size_t i = 0; i < rows.size(); ++i) {
    const float bound = std::ldexp(std::fabs(rows[i]), -4) + subnormal_steps * std::ldexp(slab.scale, -9);
    ASSERT_LE(std::fabs(slab.value(i) - rows[i]), bound) << "value " << i << " = " << rows[i];
  }
}

TEST(KvFp8Page, ScaleIsTheSmallestPowerOfTwoThatHoldsAmax) {
  EXPECT_EQ(fp8_page_scale_for(0.0f), 0.0f);
  EXPECT_EQ(fp8_page_scale_for(448.0f), 1.0f);
  EXPECT_EQ(fp8_page_scale_for(448.5f), 2.0f);
  EXPECT_EQ(fp8_page_scale_for(224.0f), 0.5f);
  EXPECT_EQ(fp8_page_scale_for(1e-42f), std::ldexp(1.0f, -126));  // kept normal: 1/s is finite
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> exponent(-100.0f, 100.0f);
  for (int trial = 0; trial < 1000; ++trial) {
    const float amax = std::exp2(exponent(rng));
    const float scale = fp8_page_scale_for(amax);
    int scale_exponent = 0;
    EXPECT_EQ(std::frexp(scale, &scale_exponent), 0.5f) << "not a power of two: " << scale;
    EXPECT_LE(amax, kFp8E4m3Max * scale);
    EXPECT_GT(amax, kFp8E4m3Max * scale / 2) << "a smaller power of two would do";
  }
}

TEST(KvFp8Page, OneAppendIsWithinTheBoundAtEveryMagnitude) {
  std::mt19937 rng(2);
  for (float magnitude : {1e-6f, 0.01f, 1.0f, 30.0f, 5000.0f, 1e20f}) {
    Slab slab;
    const std::vector<float> rows = random_rows(rng, kRows, magnitude);
    fp8_append_rows(slab.view(), 0, rows.data(), kRows);
    float amax = 0.0f;
    for (float v : rows) amax = std::max(amax, std::fabs(v));
    EXPECT_EQ(slab.scale, fp8_page_scale_for(amax));
    expect_within_bound(slab, rows, 0.5f);
  }
}

// Decode appends one row at a time; rows growing in magnitude rescale the page again and again.
TEST(KvFp8Page, RowByRowWithGrowingAmaxMatchesOneAppendWhereCodesAreNormal) {
  std::mt19937 rng(3);
  std::vector<float> rows = random_rows(rng, kRows, 1.0f);
  for (int r = 0; r < kRows; ++r) {
    for (int d = 0; d < kHeadDim; ++d) rows[static_cast<size_t>(r * kHeadDim + d)] *= std::pow(1.3f, static_cast<float>(r));
  }
  Slab incremental, direct;
  for (int r = 0; r < kRows; ++r) fp8_append_rows(incremental.view(), r, rows.data() + r * kHeadDim, 1);
  fp8_append_rows(direct.view(), 0, rows.data(), kRows);
  EXPECT_EQ(incremental.scale, direct.scale);
  expect_within_bound(incremental, rows, 1.0f);
  int normal_codes = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    if ((direct.codes[i] & 0x78) == 0) continue;  // subnormal: rounded twice, bounded above
    ++normal_codes;
    ASSERT_EQ(incremental.codes[i], direct.codes[i]) << "value " << i;
  }
  EXPECT_GT(normal_codes, kRows * kHeadDim / 2);
}

TEST(KvFp8Page, ChunksWithShrinkingAmaxKeepTheScale) {
  std::mt19937 rng(4);
  std::vector<float> rows = random_rows(rng, 40, 100.0f);
  const std::vector<float> quiet = random_rows(rng, 24, 0.001f);
  rows.insert(rows.end(), quiet.begin(), quiet.end());
  Slab slab;
  fp8_append_rows(slab.view(), 0, rows.data(), 40);
  const float scale = slab.scale;
  fp8_append_rows(slab.view(), 40, rows.data() + 40 * kHeadDim, 24);
  EXPECT_EQ(slab.scale, scale);
  expect_within_bound(slab, rows, 0.5f);
}

TEST(KvFp8Page, NonFiniteValuesAreNanAndLeaveTheScaleAlone) {
  std::mt19937 rng(5);
  std::vector<float> rows = random_rows(rng, 3, 2.0f);
  float amax = 0.0f;
  for (float v : rows) amax = std::max(amax, std::fabs(v));
  rows[5] = std::numeric_limits<float>::quiet_NaN();
  rows[70] = std::numeric_limits<float>::infinity();
  rows[130] = -std::numeric_limits<float>::infinity();
  Slab slab;
  fp8_append_rows(slab.view(), 0, rows.data(), 3);
  EXPECT_LE(slab.scale, fp8_page_scale_for(amax));
  for (size_t i : {size_t{5}, size_t{70}, size_t{130}}) EXPECT_TRUE(std::isnan(slab.value(i))) << i;
  rows[5] = rows[70] = rows[130] = 0.0f;
  for (size_t i = 0; i < rows.size(); ++i) {
    if (i == 5 || i == 70 || i == 130) continue;
    ASSERT_LE(std::fabs(slab.value(i) - rows[i]), std::ldexp(std::fabs(rows[i]), -4) + std::ldexp(slab.scale, -10));
  }
}

TEST(KvFp8Page, AllZeroRowsDecodeToZeroAndALaterAppendSetsTheScale) {
  Slab slab;
  const std::vector<float> zeros(static_cast<size_t>(2) * kHeadDim, 0.0f);
  fp8_append_rows(slab.view(), 0, zeros.data(), 2);
  EXPECT_EQ(slab.scale, 0.0f);
  EXPECT_EQ(slab.value(0), 0.0f);
  std::mt19937 rng(6);
  const std::vector<float> rows = random_rows(rng, 1, 3.0f);
  fp8_append_rows(slab.view(), 2, rows.data(), 1);
  EXPECT_GT(slab.scale, 0.0f);
  EXPECT_EQ(slab.value(0), 0.0f);
  for (size_t i = 0; i < rows.size(); ++i) {
    ASSERT_LE(std::fabs(slab.value(2 * kHeadDim + i) - rows[i]),
              std::ldexp(std::fabs(rows[i]), -4) + std::ldexp(slab.scale, -10));
  }
}

// A pool page reused from an earlier sequence: its huge old scale must not survive an append at row 0.
TEST(KvFp8Page, AppendAtRowZeroStartsThePageAnew) {
  Slab slab;
  slab.scale = 1e30f;
  std::mt19937 rng(7);
  const std::vector<float> rows = random_rows(rng, 5, 1.0f);
  fp8_append_rows(slab.view(), 0, rows.data(), 5);
  EXPECT_LE(slab.scale, 1.0f);
  expect_within_bound(slab, rows, 0.5f);
}

TEST(KvFp8Page, RowsOutsideThePageAreAnError) {
  Slab slab;
  const std::vector<float> rows(static_cast<size_t>(2) * kHeadDim, 1.0f);
  EXPECT_THROW(fp8_append_rows(slab.view(), kRows - 1, rows.data(), 2), Error);
}

// The paged append over a shuffled page table, in chunks that cross pages and end mid-page.
TEST(KvFp8Page, PositionsAppendedInChunksLandOnTheirPages) {
  constexpr int kKvHeads = 2;
  constexpr int kPages = 4;
  std::vector<uint8_t> codes(static_cast<size_t>(kPages) * kKvHeads * kRows * kHeadDim, kFp8E4m3Nan);
  std::vector<float> scales(static_cast<size_t>(kPages) * kKvHeads, std::numeric_limits<float>::quiet_NaN());
  const Fp8Pool pool{codes.data(), scales.data(), kKvHeads, kHeadDim};
  const std::vector<int32_t> page_table{2, 0, 3};
  const int64_t length = 2 * kKvPageTokens + 23;
  std::mt19937 rng(8);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> tokens(static_cast<size_t>(length) * kKvHeads * kHeadDim);
  for (float& value : tokens) value = normal(rng) * 4.0f;
  int64_t pos = 0;
  for (int64_t chunk : {37, 1, 1, 90, 3, 19}) {
    fp8_append_positions(pool, page_table.data(), pos, chunk, tokens.data() + pos * kKvHeads * kHeadDim);
    pos += chunk;
  }
  ASSERT_EQ(pos, length);
  for (int64_t p = 0; p < length; ++p) {
    for (int head = 0; head < kKvHeads; ++head) {
      const Fp8PageSlab slab = pool.slab(page_table[static_cast<size_t>(p / kKvPageTokens)], head);
      std::vector<float> stored(kHeadDim);
      fp8_dequantize(slab.codes + (p % kKvPageTokens) * kHeadDim, *slab.scale, kHeadDim, stored.data());
      for (int d = 0; d < kHeadDim; ++d) {
        const float x = tokens[static_cast<size_t>((p * kKvHeads + head) * kHeadDim + d)];
        ASSERT_LE(std::fabs(stored[static_cast<size_t>(d)] - x), std::ldexp(std::fabs(x), -4) + std::ldexp(*slab.scale, -9))
            << "position " << p << " head " << head;
      }
    }
  }
  // Page 1 of the pool is in no page table: untouched.
  EXPECT_TRUE(std::isnan(scales[2]));
}

}  // namespace
}  // namespace deltainfer
