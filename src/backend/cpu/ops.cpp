#include "backend/cpu/ops.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "backend/cpu/quant/panel_matmul.h"
#include "backend/cpu/quant/quant_matmul.h"
#include "core/vector_math.h"
#include "io/dequantize.h"

namespace deltainfer::backend::cpu {

void matmul(const float* x, const float* weight, const float* bias, float* y, int64_t n, int64_t in,
            int64_t out) {
  if (n == 1) {
    cblas_sgemv(CblasRowMajor, CblasNoTrans, static_cast<blasint>(out), static_cast<blasint>(in), 1.0f, weight,
                static_cast<blasint>(in), x, 1, 0.0f, y, 1);
  } else {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<blasint>(n), static_cast<blasint>(out),
                static_cast<blasint>(in), 1.0f, x, static_cast<blasint>(in), weight, static_cast<blasint>(in), 0.0f,
                y, static_cast<blasint>(out));
  }
  if (bias != nullptr) {
    for (int64_t row = 0; row < n; ++row) add_in_place(y + row * out, bias, out);
  }
}

void matmul(const float* x, const Weight& weight, const float* bias, float* y, int64_t n, int threads) {
  if (weight.is_quantized()) {
    const io::GgmlType type = weight.quantized->type;
    if (n >= quant::kPanelMinRows && quant::panel_matmul_supports(type) && !quant::tiles_beat_panels(type, n)) {
      quant::panel_matmul(x, *weight.quantized, bias, y, n, threads);
    } else {
      quant::quant_matmul(x, *weight.quantized, bias, y, n, threads);
    }
  } else {
    matmul(x, weight.f32(), bias, y, n, weight.cols, weight.rows);
  }
}

void matmul_shared_input(const float* x, int64_t n, std::initializer_list<MatmulTarget> targets, int threads) {
  const bool fused = std::all_of(targets.begin(), targets.end(), [n](const MatmulTarget& t) {
    return t.weight.is_quantized() && quant::has_quantized_kernel(t.weight.quantized->type) &&
           (n < quant::kPanelMinRows || quant::tiles_beat_panels(t.weight.quantized->type, n));
  });
  if (!fused) {
    for (const MatmulTarget& target : targets) matmul(x, target.weight, target.bias, target.y, n, threads);
    return;
  }
  std::vector<quant::QuantProduct> products;
  products.reserve(targets.size());
  for (const MatmulTarget& target : targets) products.push_back({&*target.weight.quantized, target.bias, target.y});
  quant::quant_matmul_many(x, n, products.data(), static_cast<int>(products.size()), threads,
                           quant::supported_isas().back());
}

void rmsnorm(const float* x, const float* gain, float* y, int64_t n, int64_t dim, float eps) {
  for (int64_t row = 0; row < n; ++row) {
    const float* in = x + row * dim;
    float* result = y + row * dim;
    double sum_squares = 0.0;
    for (int64_t i = 0; i < dim; ++i) sum_squares += static_cast<double>(in[i]) * in[i];
    const float scale = static_cast<float>(1.0 / std::sqrt(sum_squares / static_cast<double>(dim) + eps));
    for (int64_t i = 0; i < dim; ++i) result[i] = in[i] * scale * gain[i];
  }
}

void rope_inverse_frequencies(const model::ModelConfig& config, float* inv_freq) {
  const int half = config.head_dim / 2;
  const model::RopeScaling& scaling = config.rope_scaling;
  const double pi = 3.14159265358979323846;
  for (int i = 0; i < half; ++i) {
    double freq = std::pow(static_cast<double>(config.rope_theta), -2.0 * i / config.head_dim);
    if (scaling.factor > 1.0f) {
      // Llama 3.1: long wavelengths are slowed by `factor`, short ones kept, the band between blended.
      const double low_freq_wavelen = static_cast<double>(scaling.original_context) / scaling.low_freq_factor;
      const double high_freq_wavelen = static_cast<double>(scaling.original_context) / scaling.high_freq_factor;
      const double wavelen = 2.0 * pi / freq;
      if (wavelen > low_freq_wavelen) {
        freq /= scaling.factor;
      } else if (wavelen >= high_freq_wavelen) {
        const double smooth = (static_cast<double>(scaling.original_context) / wavelen - scaling.low_freq_factor) /
                              (scaling.high_freq_factor - scaling.low_freq_factor);
        freq = (1.0 - smooth) * freq / scaling.factor + smooth * freq;
      }
    }
    inv_freq[i] = static_cast<float>(freq);
  }
}

void apply_rope(float* x, int64_t n, int64_t n_heads, int64_t head_dim, int64_t positions_start,
                const float* inv_freq, model::RopeStyle style) {
  const int64_t half = head_dim / 2;
  for (int64_t t = 0; t < n; ++t) {
    const double position = static_cast<double>(positions_start + t);
    for (int64_t i = 0; i < half; ++i) {
      const double angle = position * inv_freq[i];
      const float c = static_cast<float>(std::cos(angle));
      const float s = static_cast<float>(std::sin(angle));
      for (int64_t h = 0; h < n_heads; ++h) {
        float* head = x + (t * n_heads + h) * head_dim;
        const int64_t a = style == model::RopeStyle::Interleaved ? 2 * i : i;
        const int64_t b = style == model::RopeStyle::Interleaved ? 2 * i + 1 : i + half;
        const float x0 = head[a];
        const float x1 = head[b];
        head[a] = x0 * c - x1 * s;
        head[b] = x0 * s + x1 * c;
      }
    }
  }
}

void swiglu(float* gate, const float* up, int64_t count) { silu_multiply(gate, up, count); }

void add_in_place(float* y, const float* x, int64_t count) {
  for (int64_t i = 0; i < count; ++i) y[i] += x[i];
}

void embedding_row(const Weight& table, int64_t row, float* out) {
  if (!table.is_quantized()) {
    std::memcpy(out, table.f32() + row * table.cols, static_cast<size_t>(table.cols) * sizeof(float));
    return;
  }
  const quant::QuantizedMatrix& blocks = *table.quantized;
  io::dequantize(blocks.type, blocks.blocks.data() + row * blocks.row_bytes(), out, blocks.cols);
}

}  // namespace deltainfer::backend::cpu
