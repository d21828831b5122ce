#include "backend/cpu/quant/panel_matmul.h"

#include <cblas.h>

#include <algorithm>
#include <vector>

#include "core/thread_pool.h"
#include "io/dequantize.h"

namespace deltainfer::backend::cpu::quant {
namespace {

constexpr int64_t kPanelElements = int64_t{4} << 20;  // 16 MiB of f32 scratch at most
constexpr int64_t kDequantizeRows = 16;                // rows per dequantization task

}  // namespace

bool panel_matmul_supports(io::GgmlType type) { return io::can_dequantize(type); }

void panel_matmul(const float* x, const QuantizedMatrix& weight, const float* bias, float* y, int64_t n, int threads) {
  const int64_t in = weight.cols, out = weight.rows;
  const int64_t panel_rows = std::min(out, std::max(kDequantizeRows, kPanelElements / in));
  std::vector<float> panel(static_cast<size_t>(panel_rows * in));
  ThreadPool& pool = ThreadPool::shared(threads);
  for (int64_t first = 0; first < out; first += panel_rows) {
    const int64_t rows = std::min(panel_rows, out - first);
    pool.run((rows + kDequantizeRows - 1) / kDequantizeRows, [&](int64_t task) {
      const int64_t begin = task * kDequantizeRows, count = std::min(kDequantizeRows, rows - begin);
      io::dequantize_rows(weight.type, weight.blocks.data(), in, first + begin, count, panel.data() + begin * in);
    });
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<blasint>(n), static_cast<blasint>(rows),
                static_cast<blasint>(in), 1.0f, x, static_cast<blasint>(in), panel.data(), static_cast<blasint>(in), 0.0f,
                y + first, static_cast<blasint>(out));
  }
  if (bias != nullptr) {
    for (int64_t r = 0; r < n; ++r) {
      for (int64_t o = 0; o < out; ++o) y[r * out + o] += bias[o];
    }
  }
}

}  // namespace deltainfer::backend::cpu::quant
