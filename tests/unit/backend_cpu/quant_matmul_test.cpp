// The quantized matmul against the f32 reference: weights dequantized by io::dequantize, the same
// f32 activations, BLAS matmul. Every instruction set this CPU runs is checked against the scalar
// kernels.
#include "backend/cpu/quant/quant_matmul.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>

#include "backend/cpu/ops.h"
#include "backend/cpu/quant/block_layouts.h"
#include "backend/cpu/quant/panel_matmul.h"
#include "backend/cpu/quant/quantize_activations.h"
#include "io/dequantize.h"
#include "random_blocks.h"

namespace deltainfer::backend::cpu::quant {
namespace {

using io::GgmlType;

const GgmlType kTypes[] = {GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1,
                           GgmlType::Q8_0, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K};

std::vector<float> random_normal(int64_t n, std::mt19937& rng) {
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = dist(rng);
  return v;
}

using testing::random_matrix;

std::vector<float> dequantized(const QuantizedMatrix& w) {
  std::vector<float> dense(static_cast<size_t>(w.rows * w.cols));
  io::dequantize(w.type, w.blocks.data(), dense.data(), w.rows * w.cols);
  return dense;
}

// The activation rounding is the only error of the quantized path: element j moves by at most
// half a step, step = max|x| / 127 over its block (32 elements, or 256 for the k-quants). So
// |y_q[r][o] - y[r][o]| <= Σ_j |W[o][j]| * step(r, j) / 2, plus f32 rounding of both sides.
std::vector<double> error_bounds(const std::vector<float>& x, const std::vector<float>& dense, int64_t n, int64_t in,
                                 int64_t out, int64_t block) {
  std::vector<double> half_step(x.size());
  for (size_t start = 0; start < x.size(); start += static_cast<size_t>(block)) {
    double amax = 0.0;
    for (int64_t j = 0; j < block; ++j) amax = std::max(amax, double{std::fabs(x[start + static_cast<size_t>(j)])});
    for (int64_t j = 0; j < block; ++j) half_step[start + static_cast<size_t>(j)] = amax / 127.0 / 2.0;
  }
  std::vector<double> bounds(static_cast<size_t>(n * out));
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t o = 0; o < out; ++o) {
      double rounding = 0.0, magnitude = 0.0;
      for (int64_t j = 0; j < in; ++j) {
        const double w = std::fabs(dense[static_cast<size_t>(o * in + j)]);
        rounding += w * half_step[static_cast<size_t>(r * in + j)];
        magnitude += w * std::fabs(x[static_cast<size_t>(r * in + j)]);
      }
      bounds[static_cast<size_t>(r * out + o)] = rounding * 1.001 + 1e-5 * magnitude;
    }
  }
  return bounds;
}

double relative_error(const std::vector<float>& got, const std::vector<float>& expected) {
  double diff = 0.0, norm = 0.0;
  for (size_t i = 0; i < got.size(); ++i) {
    diff += (double{got[i]} - expected[i]) * (double{got[i]} - expected[i]);
    norm += double{expected[i]} * expected[i];
  }
  return std::sqrt(diff / norm);
}

std::string case_name(GgmlType type, int64_t n, int64_t out, int threads) {
  return std::string(io::ggml_type_name(type)) + " n=" + std::to_string(n) + " out=" + std::to_string(out) +
         " threads=" + std::to_string(threads);
}

TEST(QuantMatmul, MatchesF32MatmulOnDequantizedWeights) {
  const unsigned seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  const int64_t in = 768;  // 3 k-quant super-blocks, 24 blocks of 32
  for (GgmlType type : kTypes) {
    if (!io::can_dequantize(type)) {
      std::cout << io::ggml_type_name(type) << ": io::dequantize has no reference for this type yet\n";
      continue;
    }
    const int64_t block = activation_format(type) == ActivationFormat::Q8K ? kSuperBlock : kBlock;
    double worst_relative = 0.0, worst_of_bound = 0.0;
    for (int64_t n : {1, 3, 17, 70}) {
      for (int threads : {1, 2, 3}) {
        const int64_t out = 37;  // not a multiple of the tile (16) nor of the thread counts
        SCOPED_TRACE(case_name(type, n, out, threads));
        const QuantizedMatrix w = random_matrix(type, out, in, rng);
        const std::vector<float> dense = dequantized(w);
        const std::vector<float> x = random_normal(n * in, rng);
        const std::vector<float> bias = random_normal(out, rng);
        std::vector<float> y(static_cast<size_t>(n * out)), expected(y.size());
        quant_matmul(x.data(), w, bias.data(), y.data(), n, threads);
        matmul(x.data(), dense.data(), bias.data(), expected.data(), n, in, out);
        const std::vector<double> bounds = error_bounds(x, dense, n, in, out, block);
        for (size_t i = 0; i < y.size(); ++i) {
          const double error = std::fabs(double{y[i]} - expected[i]);
          ASSERT_LE(error, bounds[i]) << "output " << i;
          worst_of_bound = std::max(worst_of_bound, error / bounds[i]);
        }
        worst_relative = std::max(worst_relative, relative_error(y, expected));
      }
    }
    std::cout << io::ggml_type_name(type) << ": relative error vs f32 up to " << worst_relative
              << "; largest error / bound " << worst_of_bound << "\n";
  }
}

// The SIMD kernels form the same integer block sums as the scalar ones and only accumulate the
// f32 block terms in another order: agreement to a few f32 ulps of the row's magnitude.
TEST(QuantMatmul, EverySimdVariantMatchesScalar) {
  const unsigned seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  const std::vector<Isa>& isas = supported_isas();
  std::cout << "instruction sets on this CPU:";
  for (Isa isa : isas) std::cout << " " << isa_name(isa);
  std::cout << "\n";
  for (GgmlType type : kTypes) {
    for (int64_t n : {1, 3, 17}) {
      const int64_t in = 1024, out = 29;
      SCOPED_TRACE(case_name(type, n, out, 2));
      const QuantizedMatrix w = random_matrix(type, out, in, rng);
      const std::vector<float> x = random_normal(n * in, rng);
      std::vector<float> scalar(static_cast<size_t>(n * out));
      quant_matmul(x.data(), w, nullptr, scalar.data(), n, 2, Isa::Scalar);
      float scale = 0.0f;
      for (float v : scalar) scale = std::max(scale, std::fabs(v));
      for (Isa isa : isas) {
        std::vector<float> simd(scalar.size());
        quant_matmul(x.data(), w, nullptr, simd.data(), n, 2, isa);
        for (size_t i = 0; i < simd.size(); ++i) {
          ASSERT_NEAR(simd[i], scalar[i], 1e-5f * scale) << isa_name(isa) << " output " << i;
        }
      }
    }
  }
}

// Q5_0 and Q5_1 against types io::dequantize already knows, block for block: a Q5_0 block holds
// the same values as a Q8_0 block with the same d and bytes q - 16; a Q5_1 block whose fifth bits
// are all clear holds the same values as a Q4_1 block with the same d, m and nibbles. Equal values
// give equal integer sums, so the products agree up to f32 accumulation order.
TEST(QuantMatmul, FiveBitTypesAgreeWithEquivalentBlocks) {
  std::mt19937 rng(11);
  const int64_t in = 256, out = 9, n = 3, blocks = out * in / kBlock;
  const std::vector<float> x = random_normal(n * in, rng);
  QuantizedMatrix q5_0 = random_matrix(GgmlType::Q5_0, out, in, rng);
  QuantizedMatrix q8_0 = random_matrix(GgmlType::Q8_0, out, in, rng);
  QuantizedMatrix q5_1 = random_matrix(GgmlType::Q5_1, out, in, rng);
  QuantizedMatrix q4_1 = random_matrix(GgmlType::Q4_1, out, in, rng);
  for (int64_t b = 0; b < blocks; ++b) {
    const uint8_t* five = q5_0.blocks.data() + b * kQ5_0Bytes;
    uint8_t* eight = q8_0.blocks.data() + b * kQ8_0Bytes;
    std::memcpy(eight, five, 2);  // d
    const uint32_t qh = load_u32(five + 2);
    for (int j = 0; j < kBlock / 2; ++j) {
      const uint8_t byte = five[6 + j];
      eight[2 + j] = static_cast<uint8_t>(((byte & 0xF) | (((qh >> j) & 1u) << 4)) - 16);
      eight[2 + j + kBlock / 2] = static_cast<uint8_t>(((byte >> 4) | (((qh >> (j + 16)) & 1u) << 4)) - 16);
    }
    uint8_t* five_1 = q5_1.blocks.data() + b * kQ5_1Bytes;
    std::memset(five_1 + 4, 0, 4);  // no fifth bits
    uint8_t* four_1 = q4_1.blocks.data() + b * kQ4_1Bytes;
    std::memcpy(four_1, five_1, 4);                // d, m
    std::memcpy(four_1 + 4, five_1 + 8, kBlock / 2);  // nibbles
  }
  for (Isa isa : supported_isas()) {
    std::vector<float> y5(static_cast<size_t>(n * out)), y8(y5.size()), y51(y5.size()), y41(y5.size());
    quant_matmul(x.data(), q5_0, nullptr, y5.data(), n, 1, isa);
    quant_matmul(x.data(), q8_0, nullptr, y8.data(), n, 1, Isa::Scalar);
    quant_matmul(x.data(), q5_1, nullptr, y51.data(), n, 1, isa);
    quant_matmul(x.data(), q4_1, nullptr, y41.data(), n, 1, Isa::Scalar);
    for (size_t i = 0; i < y5.size(); ++i) {
      EXPECT_NEAR(y5[i], y8[i], 1e-5f * std::fabs(y8[i]) + 1e-6f) << isa_name(isa) << " Q5_0 output " << i;
      EXPECT_NEAR(y51[i], y41[i], 1e-5f * std::fabs(y41[i]) + 1e-6f) << isa_name(isa) << " Q5_1 output " << i;
    }
  }
}

TEST(QuantMatmul, KernelsCoverThePriorityTypesOnly) {
  for (GgmlType type : kTypes) EXPECT_TRUE(has_quantized_kernel(type)) << io::ggml_type_name(type);
  for (GgmlType type : {GgmlType::F32, GgmlType::F16, GgmlType::BF16, GgmlType::Q2_K, GgmlType::IQ4_XS}) {
    EXPECT_FALSE(has_quantized_kernel(type)) << io::ggml_type_name(type);
  }
}

// Through ops.h's entry point: a quantized Weight and its f32 twin give the same products.
TEST(QuantMatmul, OpsMatmulDispatchesOnTheWeightStorage) {
  std::mt19937 rng(7);
  const int64_t in = 256, out = 20, n = 4;
  Weight quantized;
  quantized.rows = out;
  quantized.cols = in;
  quantized.quantized = random_matrix(GgmlType::Q8_0, out, in, rng);
  Weight dense;
  dense.rows = out;
  dense.cols = in;
  dense.values.resize(static_cast<size_t>(out * in));
  io::dequantize(GgmlType::Q8_0, quantized.quantized->blocks.data(), dense.values.data(), out * in);
  const std::vector<float> x = random_normal(n * in, rng);
  std::vector<float> yq(static_cast<size_t>(n * out)), yf(yq.size());
  matmul(x.data(), quantized, nullptr, yq.data(), n);
  matmul(x.data(), dense, nullptr, yf.data(), n);
  EXPECT_LT(relative_error(yq, yf), 0.02);
  EXPECT_GT(relative_error(yq, yf), 0.0);  // the quantized path really ran (8-bit activations)
}

// Below kPanelMinRows every row's product is bit for bit the same whatever else is in the batch:
// each row is quantized on its own, and every kernel variant (one weight row × four activation
// rows, four weight rows × one, one × one) forms the same integer sums and adds the f32 terms in
// the same order. So a sequence decodes the same tokens alone or batched with others.
TEST(QuantMatmul, ARowsProductDoesNotDependOnTheBatch) {
  std::mt19937 rng(13);
  const int64_t in = 512, out = 23, n = 7;
  for (GgmlType type : kTypes) {
    const QuantizedMatrix w = random_matrix(type, out, in, rng);
    const std::vector<float> x = random_normal(n * in, rng);
    const std::vector<float> bias = random_normal(out, rng);
    std::vector<float> batched(static_cast<size_t>(n * out)), alone(static_cast<size_t>(out));
    quant_matmul(x.data(), w, bias.data(), batched.data(), n, 2);
    for (int64_t r = 0; r < n; ++r) {
      quant_matmul(x.data() + r * in, w, bias.data(), alone.data(), 1, 2);
      for (int64_t o = 0; o < out; ++o) {
        ASSERT_EQ(batched[static_cast<size_t>(r * out + o)], alone[static_cast<size_t>(o)])
            << io::ggml_type_name(type) << " row " << r << " output " << o;
      }
    }
  }
}

// The four-weight-row kernels (decode) against the one-row kernel of the same instruction set, bit
// for bit: the same integer sums, the same f32 order. Rows 0..3 and 4..7 of a matrix with an odd
// row count, which the tail rows then cover one at a time in quant_matmul.
TEST(QuantMatmul, FourWeightRowKernelsEqualTheOneRowKernel) {
  std::mt19937 rng(std::random_device{}());
  const int64_t in = 1024, out = 9;
  for (Isa isa : supported_isas()) {
    for (GgmlType type : kTypes) {
      const WeightRowsDot4 rows4 = weight_rows_dot4_kernel(type, isa);
      if (rows4 == nullptr) continue;
      const RowDot one = dot_kernel(type, isa);
      const QuantizedMatrix w = random_matrix(type, out, in, rng);
      const std::vector<float> x = random_normal(in, rng);
      std::vector<uint8_t> activations;
      if (activation_format(type) == ActivationFormat::Q8K) {
        activations.resize(static_cast<size_t>(in / kSuperBlock) * sizeof(Q8KBlock));
        quantize_row_q8k(x.data(), reinterpret_cast<Q8KBlock*>(activations.data()), in);
      } else {
        activations.resize(static_cast<size_t>(in / kBlock) * sizeof(Q8Block));
        quantize_row_q8(x.data(), reinterpret_cast<Q8Block*>(activations.data()), in);
      }
      const int64_t row_bytes = w.row_bytes(), n_blocks = w.blocks_per_row();
      for (int64_t first = 0; first + 4 <= out; first += 4) {
        float four[4];
        rows4(w.blocks.data() + first * row_bytes, row_bytes, activations.data(), n_blocks, four);
        for (int64_t k = 0; k < 4; ++k) {
          ASSERT_EQ(four[k], one(w.blocks.data() + (first + k) * row_bytes, activations.data(), n_blocks))
              << isa_name(isa) << " " << io::ggml_type_name(type) << " row " << first + k;
        }
      }
    }
  }
}

// q/k/v and gate/up share their input: one quantization of x, one pool job, the same products as
// one call per weight, bit for bit (same kernels, same tiles); the weights mix both activation
// formats (32-element types and k-quants), as Q4_K_M files do.
TEST(QuantMatmul, SharedInputProductsEqualOneCallPerWeight) {
  std::mt19937 rng(9);
  const int64_t in = 512;
  const GgmlType types[] = {GgmlType::Q5_0, GgmlType::Q6_K, GgmlType::Q8_0};
  const int64_t outs[] = {37, 8, 21};
  for (int64_t n : {1, 5}) {
    std::vector<Weight> weights(3);
    std::vector<std::vector<float>> biases, fused(3), separate(3);
    for (size_t i = 0; i < 3; ++i) {
      weights[i].rows = outs[i];
      weights[i].cols = in;
      weights[i].quantized = random_matrix(types[i], outs[i], in, rng);
      biases.push_back(random_normal(outs[i], rng));
      fused[i].resize(static_cast<size_t>(n * outs[i]));
      separate[i].resize(fused[i].size());
    }
    const std::vector<float> x = random_normal(n * in, rng);
    matmul_shared_input(x.data(), n,
                        {{weights[0], biases[0].data(), fused[0].data()},
                         {weights[1], nullptr, fused[1].data()},
                         {weights[2], biases[2].data(), fused[2].data()}},
                        2);
    matmul(x.data(), weights[0], biases[0].data(), separate[0].data(), n, 2);
    matmul(x.data(), weights[1], nullptr, separate[1].data(), n, 2);
    matmul(x.data(), weights[2], biases[2].data(), separate[2].data(), n, 2);
    for (size_t i = 0; i < 3; ++i) EXPECT_EQ(fused[i], separate[i]) << io::ggml_type_name(types[i]) << " n=" << n;
  }
}

// Decode (a few rows) splits a job into guided chunks of weight bytes rather than 16-row tiles:
// large products, several of them, every thread count; each output must be written exactly once
// (outputs start as NaN) and equal, bit for bit, the same row computed in a batch of 7 rows (uniform
// tiles; a row's product does not depend on the batch, test above).
TEST(QuantMatmul, DecodeChunksWriteEveryOutputOnceWhateverTheThreads) {
  std::mt19937 rng(std::random_device{}());
  const int64_t in = 512, batch = 7;
  const GgmlType types[] = {GgmlType::Q4_1, GgmlType::Q4_K, GgmlType::Q8_0};
  const int64_t outs[] = {1001, 203, 517};
  std::vector<Weight> weights(3);
  std::vector<std::vector<float>> reference(3);
  const std::vector<float> x = random_normal(batch * in, rng);
  for (size_t i = 0; i < 3; ++i) {
    weights[i].rows = outs[i];
    weights[i].cols = in;
    weights[i].quantized = random_matrix(types[i], outs[i], in, rng);
    reference[i].resize(static_cast<size_t>(batch * outs[i]));
    matmul(x.data(), weights[i], nullptr, reference[i].data(), batch, 2);
  }
  for (int64_t n : {1, 2, 4}) {
    for (int threads : {1, 2, 3}) {
      std::vector<std::vector<float>> y(3);
      for (size_t i = 0; i < 3; ++i) y[i].assign(static_cast<size_t>(n * outs[i]), std::nanf(""));
      matmul_shared_input(x.data(), n,
                          {{weights[0], nullptr, y[0].data()},
                           {weights[1], nullptr, y[1].data()},
                           {weights[2], nullptr, y[2].data()}},
                          threads);
      for (size_t i = 0; i < 3; ++i) {
        for (size_t o = 0; o < y[i].size(); ++o) {
          ASSERT_EQ(y[i][o], reference[i][o])
              << io::ggml_type_name(types[i]) << " n=" << n << " threads=" << threads << " output " << o;
        }
      }
    }
  }
}

// A batch of kPanelMinRows rows or more goes through f32 panels (for the types with tile kernels,
// from kTileMaxRows rows on): the f32 result (up to GEMM blocking order), not the 8-bit one. The
// Q4_0 case has 4.2M weights: two 16 MiB panels.
TEST(QuantMatmul, PanelMatmulEqualsF32MatmulOnDequantizedWeights) {
  std::mt19937 rng(5);
  const int64_t in = 256, n = std::max(kPanelMinRows, kTileMaxRows) + 3;
  for (GgmlType type : kTypes) {
    if (!panel_matmul_supports(type)) continue;
    SCOPED_TRACE(io::ggml_type_name(type));
    const int64_t out = type == GgmlType::Q4_0 ? 16400 : 70;
    const QuantizedMatrix w = random_matrix(type, out, in, rng);
    const std::vector<float> dense = dequantized(w);
    const std::vector<float> x = random_normal(n * in, rng);
    const std::vector<float> bias = random_normal(out, rng);
    std::vector<float> panel(static_cast<size_t>(n * out)), expected(panel.size()), eight_bit(panel.size());
    Weight weight;
    weight.rows = out;
    weight.cols = in;
    weight.quantized = w;
    matmul(x.data(), weight, bias.data(), panel.data(), n, 2);
    matmul(x.data(), dense.data(), bias.data(), expected.data(), n, in, out);
    quant_matmul(x.data(), w, bias.data(), eight_bit.data(), n, 2);
    EXPECT_LT(relative_error(panel, expected), 1e-6);
    EXPECT_GT(relative_error(eight_bit, expected), 1e-4);  // so the first check tells the paths apart
  }
}

}  // namespace
}  // namespace deltainfer::backend::cpu::quant
