#include "backend/cpu/quant/quant_matmul.h"

#include <algorithm>
#include <vector>

#include "backend/cpu/quant/quantize_activations.h"
#include "core/thread_pool.h"
#include "core/error.h"

namespace deltainfer::backend::cpu::quant {
namespace {

// A tile is kOutputTile weight rows × kInputTile activation rows: the weight tile (a few KB) stays
// in L1 while the activation rows stream past it.
constexpr int64_t kOutputTile = 16;
constexpr int64_t kInputTile = 64;
// Decode (a batch of at most kFewRows rows) reads each weight row once, so its work need not be
// cut into L1-sized tiles. 16-row tiles were ~0.3 us of work each on SmolLM2, and claiming one (an
// atomic on a line both cores write) cost a large share of it with 2 threads, while the threads'
// streams jumped every 16 rows. Decode instead takes guided chunks: each claims 1/(2 threads) of
// the weight bytes not yet handed out (at least kMinChunkBytes), so a job has ~10-20 chunks, the
// threads stream long runs, and the last chunks, small, even out the threads' finishing times.
constexpr int64_t kFewRows = 4;
constexpr int64_t kMinChunkBytes = 16 * 1024;
constexpr int kFormats = 2;  // ActivationFormat::Q8, ActivationFormat::Q8K

// The activations of one call, quantized: n rows of `row_bytes` each, in a buffer reused across
// calls (a decode step makes ~150 of them; the calling thread owns it).
struct QuantizedActivations {
  std::vector<uint8_t> bytes;
  int64_t row_bytes = 0;
  const void* row(int64_t r) const { return bytes.data() + r * row_bytes; }
};

void quantize_activations(const float* x, int64_t n, int64_t in, ActivationFormat format, ThreadPool& pool,
                          QuantizedActivations& q) {
  q.row_bytes = format == ActivationFormat::Q8K ? in / kSuperBlock * static_cast<int64_t>(sizeof(Q8KBlock))
                                                : in / kBlock * static_cast<int64_t>(sizeof(Q8Block));
  if (q.bytes.size() < static_cast<size_t>(n * q.row_bytes)) q.bytes.resize(static_cast<size_t>(n * q.row_bytes));
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
}

// One product's share of the job: its kernels, its activations and where its tiles start.
struct ProductPlan {
  QuantProduct product;
  RowDot dot;
  RowDot4 dot4;
  WeightRowsDot4 rows_dot4;
  WeightTile tile;  // batches of more than kFewRows rows only (decode keeps its chunks and rows_dot4)
  const QuantizedActivations* activations;
  int64_t output_tiles;
  int64_t first_tile;
};

// Weight rows [o_begin, o_end) of one product against activation rows [r_begin, r_end).
struct Tile {
  size_t plan;
  int64_t o_begin, o_end, r_begin, r_end;
};

// The uniform tiles (kOutputTile × kInputTile) of a batch of more than kFewRows rows; `tile` counts
// over all products of the job.
Tile uniform_tile(const std::vector<ProductPlan>& plans, int64_t tile, int64_t n) {
  size_t p = 0;
  while (p + 1 < plans.size() && plans[p + 1].first_tile <= tile) ++p;
  const ProductPlan& plan = plans[p];
  const int64_t local = tile - plan.first_tile;
  const int64_t o_begin = local % plan.output_tiles * kOutputTile;
  const int64_t r_begin = local / plan.output_tiles * kInputTile;
  return {p, o_begin, std::min(plan.product.weight->rows, o_begin + kOutputTile), r_begin,
          std::min(n, r_begin + kInputTile)};
}

// The guided chunks of a decode job (see kMinChunkBytes), products in order, rows in multiples of 4
// (the four-row kernels), never across two products.
std::vector<Tile> guided_chunks(const std::vector<ProductPlan>& plans, int64_t n, int threads) {
  int64_t unassigned = 0;
  for (const ProductPlan& plan : plans) unassigned += plan.product.weight->rows * plan.product.weight->row_bytes();
  std::vector<Tile> chunks;
  for (size_t p = 0; p < plans.size(); ++p) {
    const int64_t rows = plans[p].product.weight->rows, row_bytes = plans[p].product.weight->row_bytes();
    for (int64_t row = 0; row < rows;) {
      const int64_t bytes = std::max(kMinChunkBytes, unassigned / (2 * threads));
      const int64_t take = std::min(rows - row, ((bytes + row_bytes - 1) / row_bytes + 3) / 4 * 4);
      chunks.push_back({p, row, row + take, 0, n});
      row += take;
      unassigned -= take * row_bytes;
    }
  }
  return chunks;
}

// The activation rows of `tile` from r in groups of the tile kernel's rows, against the tile's
// weight rows in fours (a weight tail row by row); returns the first row it left.
int64_t run_weight_tiles(const ProductPlan& plan, const Tile& tile, int64_t r) {
  const QuantizedMatrix& weight = *plan.product.weight;
  const QuantizedActivations& xq = *plan.activations;
  const float* bias = plan.product.bias;
  float* y = plan.product.y;
  const int64_t out = weight.rows, n_blocks = weight.blocks_per_row(), row_bytes = weight.row_bytes();
  const int rows = plan.tile.rows;
  constexpr int kMaxRows = 4;
  if (rows > kMaxRows) throw_error("weight tile of {} activation rows (at most {})", rows, kMaxRows);
  for (; r + rows <= tile.r_end; r += rows) {
    const void* activations[kMaxRows];
    for (int j = 0; j < rows; ++j) activations[j] = xq.row(r + j);
    int64_t o = tile.o_begin;
    for (; o + 4 <= tile.o_end; o += 4) {
      float products[4 * kMaxRows];
      plan.tile.dot(weight.blocks.data() + o * row_bytes, row_bytes, activations, n_blocks, products);
      for (int j = 0; j < rows; ++j) {
        for (int64_t k = 0; k < 4; ++k) {
          y[(r + j) * out + o + k] = products[4 * j + k] + (bias != nullptr ? bias[o + k] : 0.0f);
        }
      }
    }
    for (; o < tile.o_end; ++o) {
      for (int j = 0; j < rows; ++j) {
        const uint8_t* weight_row = weight.blocks.data() + o * row_bytes;
        y[(r + j) * out + o] = plan.dot(weight_row, activations[j], n_blocks) + (bias != nullptr ? bias[o] : 0.0f);
      }
    }
  }
  return r;
}

void run_tile(const ProductPlan& plan, const Tile& tile) {
  const QuantizedMatrix& weight = *plan.product.weight;
  const QuantizedActivations& xq = *plan.activations;
  const float* bias = plan.product.bias;
  float* y = plan.product.y;
  const int64_t out = weight.rows, n_blocks = weight.blocks_per_row(), row_bytes = weight.row_bytes();
  const int64_t o_begin = tile.o_begin, o_end = tile.o_end, r_end = tile.r_end;
  int64_t r = tile.r_begin;
  if (plan.tile.dot != nullptr) r = run_weight_tiles(plan, tile, r);
  if (plan.dot4 != nullptr) {
    for (; r + 4 <= r_end; r += 4) {
      const void* activations[4] = {xq.row(r), xq.row(r + 1), xq.row(r + 2), xq.row(r + 3)};
      for (int64_t o = o_begin; o < o_end; ++o) {
        float products[4];
        plan.dot4(weight.blocks.data() + o * row_bytes, activations, n_blocks, products);
        for (int64_t k = 0; k < 4; ++k) y[(r + k) * out + o] = products[k] + (bias != nullptr ? bias[o] : 0.0f);
      }
    }
  }
  for (; r < r_end; ++r) {
    const void* activations = xq.row(r);
    int64_t o = o_begin;
    if (plan.rows_dot4 != nullptr) {
      for (; o + 4 <= o_end; o += 4) {
        float products[4];
        plan.rows_dot4(weight.blocks.data() + o * row_bytes, row_bytes, activations, n_blocks, products);
        for (int64_t k = 0; k < 4; ++k) y[r * out + o + k] = products[k] + (bias != nullptr ? bias[o + k] : 0.0f);
      }
    }
    for (; o < o_end; ++o) {
      const uint8_t* weight_row = weight.blocks.data() + o * row_bytes;
      y[r * out + o] = plan.dot(weight_row, activations, n_blocks) + (bias != nullptr ? bias[o] : 0.0f);
    }
  }
}

}  // namespace

void quant_matmul_many(const float* x, int64_t n, const QuantProduct* products, int count, int threads, Isa isa) {
  thread_local QuantizedActivations quantized[kFormats];
  ThreadPool& pool = ThreadPool::shared(threads);
  const int64_t input_tiles = (n + kInputTile - 1) / kInputTile;
  const int64_t in = count > 0 ? products[0].weight->cols : 0;
  bool formats_done[kFormats] = {false, false};
  std::vector<ProductPlan> plans;
  plans.reserve(static_cast<size_t>(count));
  int64_t tiles = 0;
  for (int i = 0; i < count; ++i) {
    const QuantizedMatrix& weight = *products[i].weight;
    if (!has_quantized_kernel(weight.type)) {
      throw_error("no quantized matmul kernel for type {}", io::ggml_type_name(weight.type));
    }
    if (weight.cols != in) throw_error("quant_matmul_many: weights of {} and {} columns share one input", in, weight.cols);
    const auto format = static_cast<int>(activation_format(weight.type));
    if (!formats_done[format]) {
      quantize_activations(x, n, in, activation_format(weight.type), pool, quantized[format]);
      formats_done[format] = true;
    }
    const int64_t output_tiles = (weight.rows + kOutputTile - 1) / kOutputTile;
    plans.push_back({products[i], dot_kernel(weight.type, isa), dot4_kernel(weight.type, isa),
                     weight_rows_dot4_kernel(weight.type, isa),
                     n > kFewRows ? weight_tile_kernel(weight.type, isa) : WeightTile{}, &quantized[format],
                     output_tiles, tiles});
    tiles += output_tiles * input_tiles;
  }
  if (n <= kFewRows) {
    const std::vector<Tile> chunks = guided_chunks(plans, n, pool.threads());
    pool.run(static_cast<int64_t>(chunks.size()), [&](int64_t c) {
      const Tile& chunk = chunks[static_cast<size_t>(c)];
      run_tile(plans[chunk.plan], chunk);
    });
  } else {
    pool.run(tiles, [&](int64_t tile) {
      const Tile uniform = uniform_tile(plans, tile, n);
      run_tile(plans[uniform.plan], uniform);
    });
  }
}

bool tiles_beat_panels(io::GgmlType type, int64_t n) {
  return n < kTileMaxRows && weight_tile_kernel(type, supported_isas().back()).dot != nullptr;
}

void quant_matmul(const float* x, const QuantizedMatrix& weight, const float* bias, float* y, int64_t n, int threads,
                  Isa isa) {
  const QuantProduct product{&weight, bias, y};
  quant_matmul_many(x, n, &product, 1, threads, isa);
}

void quant_matmul(const float* x, const QuantizedMatrix& weight, const float* bias, float* y, int64_t n,
                  int threads) {
  quant_matmul(x, weight, bias, y, n, threads, supported_isas().back());
}

}  // namespace deltainfer::backend::cpu::quant
