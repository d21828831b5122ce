#include "backend/cpu/quant/quant_matmul.h"

#include <algorithm>
#include <vector>

#include "backend/cpu/quant/quantize_activations.h"
#include "backend/cpu/quant/thread_pool.h"
#include "core/error.h"

namespace deltainfer::backend::cpu::quant {
namespace {

// A tile is kOutputTile weight rows × kInputTile activation rows: the weight tile (a few KB) stays
// in L1 while the activation rows stream past it.
constexpr int64_t kOutputTile = 16;
constexpr int64_t kInputTile = 64;

// The activations of one call, quantized: n rows of `row_bytes` each.
struct QuantizedActivations {
  std::vector<uint8_t> bytes;
  int64_t row_bytes = 0;
  const void* row(int64_t r) const { return bytes.data() + r * row_bytes; }
};

QuantizedActivations quantize_activations(const float* x, int64_t n, int64_t in, ActivationFormat format,
                                          ThreadPool& pool) {
  QuantizedActivations q;
  q.row_bytes = format == ActivationFormat::Q8K ? in / kSuperBlock * static_cast<int64_t>(sizeof(Q8KBlock))
                                                : in / kBlock * static_cast<int64_t>(sizeof(Q8Block));
  q.bytes.resize(static_cast<size_t>(n * q.row_bytes));
  auto quantize_row = [&](int64_t r) {
    void* dst = q.bytes.data() + r * q.row_bytes;
    if (format == ActivationFormat::Q8K) {
      quantize_row_q8k(x + r * in, static_cast<Q8KBlock*>(dst), in);
    } else {
      quantize_row_q8(x + r * in, static_cast<Q8Block*>(dst), in);
    }
  };
  // A few rows cost less than waking the pool for them.
  if (n < 4 * pool.threads()) {
    for (int64_t r = 0; r < n; ++r) quantize_row(r);
  } else {
    pool.run(n, quantize_row);
  }
  return q;
}

}  // namespace

void quant_matmul(const float* x, const QuantizedMatrix& weight, const float* bias, float* y, int64_t n, int threads,
                  Isa isa) {
  if (!has_quantized_kernel(weight.type)) {
    throw_error("no quantized matmul kernel for type {}", io::ggml_type_name(weight.type));
  }
  const RowDot dot = dot_kernel(weight.type, isa);
  const RowDot4 dot4 = dot4_kernel(weight.type, isa);
  ThreadPool& pool = ThreadPool::shared(threads);
  const int64_t in = weight.cols, out = weight.rows, n_blocks = weight.blocks_per_row();
  const int64_t row_bytes = weight.row_bytes();
  const QuantizedActivations xq = quantize_activations(x, n, in, activation_format(weight.type), pool);
  const int64_t output_tiles = (out + kOutputTile - 1) / kOutputTile;
  const int64_t input_tiles = (n + kInputTile - 1) / kInputTile;
  pool.run(output_tiles * input_tiles, [&](int64_t tile) {
    const int64_t o_begin = tile % output_tiles * kOutputTile, o_end = std::min(out, o_begin + kOutputTile);
    const int64_t r_begin = tile / output_tiles * kInputTile, r_end = std::min(n, r_begin + kInputTile);
    int64_t r = r_begin;
    if (dot4 != nullptr) {
      for (; r + 4 <= r_end; r += 4) {
        const void* activations[4] = {xq.row(r), xq.row(r + 1), xq.row(r + 2), xq.row(r + 3)};
        for (int64_t o = o_begin; o < o_end; ++o) {
          float products[4];
          dot4(weight.blocks.data() + o * row_bytes, activations, n_blocks, products);
          for (int64_t k = 0; k < 4; ++k) y[(r + k) * out + o] = products[k] + (bias != nullptr ? bias[o] : 0.0f);
        }
      }
    }
    for (; r < r_end; ++r) {
      const void* activations = xq.row(r);
      for (int64_t o = o_begin; o < o_end; ++o) {
        const uint8_t* weight_row = weight.blocks.data() + o * row_bytes;
        y[r * out + o] = dot(weight_row, activations, n_blocks) + (bias != nullptr ? bias[o] : 0.0f);
      }
    }
  });
}

void quant_matmul(const float* x, const QuantizedMatrix& weight, const float* bias, float* y, int64_t n,
                  int threads) {
  quant_matmul(x, weight, bias, y, n, threads, supported_isas().back());
}

}  // namespace deltainfer::backend::cpu::quant
