// The prefill tile kernels (four weight rows × a few activation rows, dot_kernels.h WeightTile)
// against the decode kernels, bit for bit: the same integer block sums and the same f32 order, so
// prefill's products equal decode's. Also which kernel the dispatch hands out, and that
// quant_matmul's tiled batches equal one row at a time.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

#include "backend/cpu/ops.h"
#include "backend/cpu/quant/block_layouts.h"
#include "backend/cpu/quant/dot_kernels.h"
#include "backend/cpu/quant/panel_matmul.h"
#include "backend/cpu/quant/quant_matmul.h"
#include "backend/cpu/quant/quantize_activations.h"
#include "random_blocks.h"

namespace deltainfer::backend::cpu::quant {
namespace {

using io::GgmlType;

const GgmlType kTileTypes[] = {GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q8_0};
const GgmlType kOtherTypes[] = {GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K, GgmlType::F32};

using testing::random_matrix;

std::vector<float> random_normal(int64_t n, std::mt19937& rng) {
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = dist(rng);
  return v;
}

bool supports(Isa isa) {
  const std::vector<Isa>& isas = supported_isas();
  return std::find(isas.begin(), isas.end(), isa) != isas.end();
}

// Every tile kernel this CPU runs, for every activation row count 1..9 (whole tiles and the rows
// a tile leaves, which the tile kernel is then called on from a later start row) and 9 weight
// rows (two groups of four; the ninth has no tile): out[4 j + k] equals the four-weight-row decode
// kernel on activation row j, bit for bit.
TEST(WeightTile, EqualsTheFourWeightRowKernelBitForBit) {
  std::mt19937 rng(std::random_device{}());
  const int64_t in = 1024, out = 9;
  int checked = 0;
  for (Isa isa : supported_isas()) {
    for (GgmlType type : kTileTypes) {
      const WeightTile tile = weight_tile_kernel(type, isa);
      if (tile.dot == nullptr) continue;
      const WeightRowsDot4 rows4 = weight_rows_dot4_kernel(type, isa);
      ASSERT_NE(rows4, nullptr);
      const QuantizedMatrix w = random_matrix(type, out, in, rng);
      const int64_t row_bytes = w.row_bytes(), n_blocks = w.blocks_per_row();
      for (int64_t n = 1; n <= 9; ++n) {
        const std::vector<float> x = random_normal(n * in, rng);
        std::vector<Q8Block> activations(static_cast<size_t>(n * n_blocks));
        for (int64_t r = 0; r < n; ++r) quantize_row_q8(x.data() + r * in, activations.data() + r * n_blocks, in);
        for (int64_t r = 0; r + tile.rows <= n; r += tile.rows) {
          std::vector<const void*> rows;
          for (int j = 0; j < tile.rows; ++j) rows.push_back(activations.data() + (r + j) * n_blocks);
          for (int64_t first = 0; first + 4 <= out; first += 4) {
            std::vector<float> got(static_cast<size_t>(4 * tile.rows));
            tile.dot(w.blocks.data() + first * row_bytes, row_bytes, rows.data(), n_blocks, got.data());
            for (int j = 0; j < tile.rows; ++j) {
              float expected[4];
              rows4(w.blocks.data() + first * row_bytes, row_bytes, rows[static_cast<size_t>(j)], n_blocks, expected);
              for (int k = 0; k < 4; ++k) {
                ASSERT_EQ(got[static_cast<size_t>(4 * j + k)], expected[k])
                    << isa_name(isa) << " " << io::ggml_type_name(type) << " n " << n << " activation row " << r + j
                    << " weight row " << first + k;
                ++checked;
              }
            }
          }
        }
      }
    }
  }
  if (!supports(Isa::Avx2)) GTEST_SKIP() << "no AVX2 on this CPU: no tile kernel to check";
  EXPECT_GT(checked, 0);
}

// Through quant_matmul: batches of 1..9 rows and prefill sizes (33, 70: ragged against the tile's
// activation rows and the 64-row input tiles), a weight of 37 rows (ragged against four and 16),
// bias, 1 and 2 threads: every output equals the same row multiplied alone (the decode path).
TEST(WeightTile, BatchedProductsEqualOneRowAtATime) {
  std::mt19937 rng(21);
  const int64_t in = 512, out = 37;
  for (GgmlType type : kTileTypes) {
    const QuantizedMatrix w = random_matrix(type, out, in, rng);
    const std::vector<float> bias = random_normal(out, rng);
    for (int64_t n : {1, 2, 3, 4, 5, 6, 7, 8, 9, 33, 70}) {
      const std::vector<float> x = random_normal(n * in, rng);
      for (int threads : {1, 2}) {
        std::vector<float> batched(static_cast<size_t>(n * out)), alone(static_cast<size_t>(out));
        quant_matmul(x.data(), w, bias.data(), batched.data(), n, threads);
        for (int64_t r = 0; r < n; ++r) {
          quant_matmul(x.data() + r * in, w, bias.data(), alone.data(), 1, threads);
          for (int64_t o = 0; o < out; ++o) {
            ASSERT_EQ(batched[static_cast<size_t>(r * out + o)], alone[static_cast<size_t>(o)])
                << io::ggml_type_name(type) << " n " << n << " threads " << threads << " row " << r << " output " << o;
          }
        }
      }
    }
  }
}

// The dispatch hands out a tile kernel only where one exists: the 32-element types on AVX2 (two
// activation rows) and AVX2+VNNI (four), none for the scalar kernels, the k-quants or f32; and
// batches are routed to the tiles only where this CPU's best instruction set has them, and only
// below kTileMaxRows rows.
TEST(WeightTile, DispatchPicksTheTileKernelOnlyWhereSupported) {
  for (GgmlType type : kTileTypes) {
    EXPECT_EQ(weight_tile_kernel(type, Isa::Scalar).dot, nullptr) << io::ggml_type_name(type);
    const WeightTile avx2 = weight_tile_kernel(type, Isa::Avx2);
    const WeightTile vnni = weight_tile_kernel(type, Isa::Avx2Vnni);
#if defined(__x86_64__) || defined(__i386__)
    EXPECT_NE(avx2.dot, nullptr) << io::ggml_type_name(type);
    EXPECT_NE(vnni.dot, nullptr) << io::ggml_type_name(type);
    EXPECT_NE(avx2.dot, vnni.dot) << io::ggml_type_name(type);
    EXPECT_EQ(avx2.rows, 2);
    EXPECT_EQ(vnni.rows, 4);
#else
    EXPECT_EQ(avx2.dot, nullptr);
    EXPECT_EQ(vnni.dot, nullptr);
#endif
    EXPECT_EQ(tiles_beat_panels(type, kTileMaxRows - 1), supports(Isa::Avx2)) << io::ggml_type_name(type);
    EXPECT_FALSE(tiles_beat_panels(type, kTileMaxRows)) << io::ggml_type_name(type);
  }
  for (GgmlType type : kOtherTypes) {
    for (Isa isa : {Isa::Scalar, Isa::Avx2, Isa::Avx2Vnni}) {
      EXPECT_EQ(weight_tile_kernel(type, isa).dot, nullptr) << isa_name(isa) << " " << io::ggml_type_name(type);
    }
    EXPECT_FALSE(tiles_beat_panels(type, 32)) << io::ggml_type_name(type);
  }
}

// ops.h's matmul on a prefill batch below kTileMaxRows: where tiles_beat_panels, the 8-bit tile
// result (bit for bit quant_matmul's), else the panels' (bit for bit panel_matmul's).
TEST(WeightTile, OpsMatmulRoutesShortPrefillBatchesToTheTiles) {
  std::mt19937 rng(8);
  const int64_t in = 256, out = 37, n = kPanelMinRows + 5;
  for (GgmlType type : {GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q8_0,
                        GgmlType::Q6_K}) {
    Weight weight;
    weight.rows = out;
    weight.cols = in;
    weight.quantized = random_matrix(type, out, in, rng);
    const std::vector<float> x = random_normal(n * in, rng);
    std::vector<float> routed(static_cast<size_t>(n * out)), expected(routed.size());
    matmul(x.data(), weight, nullptr, routed.data(), n, 2);
    if (tiles_beat_panels(type, n)) {
      quant_matmul(x.data(), *weight.quantized, nullptr, expected.data(), n, 2);
    } else {
      panel_matmul(x.data(), *weight.quantized, nullptr, expected.data(), n, 2);
    }
    EXPECT_EQ(routed, expected) << io::ggml_type_name(type) << (tiles_beat_panels(type, n) ? " tiles" : " panels");
  }
}

}  // namespace
}  // namespace deltainfer::backend::cpu::quant
