#include "core/kv_fp8_page.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"
#include "core/fp8_e4m3.h"
#include "core/kv_page.h"

namespace deltainfer {
namespace {

float finite_amax(const float* values, int64_t n) {
  float amax = 0.0f;
  for (int64_t i = 0; i < n; ++i) {
    if (std::isfinite(values[i])) amax = std::max(amax, std::fabs(values[i]));
  }
  return amax;
}

// Quantizes with an inverse scale 2^-e: multiplying by it is exact, so the only rounding is e4m3's.
void quantize(const float* values, int64_t n, float scale, uint8_t* codes) {
  const float inverse = scale > 0.0f ? 1.0f / scale : 1.0f;  // scale 0: every finite value is zero
  for (int64_t i = 0; i < n; ++i) codes[i] = fp8_e4m3_encode(values[i] * inverse);
}

// Divides the codes by new_scale / old_scale (a power of two): exact for codes that stay normal.
void rescale(uint8_t* codes, int64_t n, float old_scale, float new_scale) {
  const float factor = old_scale / new_scale;
  for (int64_t i = 0; i < n; ++i) codes[i] = fp8_e4m3_encode(fp8_e4m3_decode(codes[i]) * factor);
}

}  // namespace

void fp8_append_rows(const Fp8PageSlab& slab, int first_row, const float* rows, int n_rows) {
  if (first_row < 0 || n_rows < 0 || first_row + n_rows > kKvPageTokens || slab.head_dim <= 0) {
    throw_error("fp8 page append: rows {}..{} of head dim {} do not fit a page of {} rows", first_row,
                first_row + n_rows, slab.head_dim, kKvPageTokens);
  }
  const int64_t row_values = slab.head_dim;
  const float old_scale = first_row == 0 ? 0.0f : *slab.scale;
  const float new_scale = std::max(old_scale, fp8_page_scale_for(finite_amax(rows, n_rows * row_values)));
  if (old_scale > 0.0f && new_scale > old_scale) rescale(slab.codes, first_row * row_values, old_scale, new_scale);
  quantize(rows, n_rows * row_values, new_scale, slab.codes + first_row * row_values);
  *slab.scale = new_scale;
}

void fp8_dequantize(const uint8_t* codes, float scale, int64_t n, float* values) {
  for (int64_t i = 0; i < n; ++i) values[i] = fp8_e4m3_decode(codes[i]) * scale;
}

Fp8PageSlab Fp8Pool::slab(int64_t page, int kv_head) const {
  const int64_t index = page * n_kv_heads + kv_head;
  return {codes + index * kKvPageTokens * head_dim, scales + index, head_dim};
}

void fp8_append_positions(const Fp8Pool& pool, const int32_t* page_table, int64_t first_position,
                          int64_t n_positions, const float* rows) {
  const int64_t token_values = int64_t{pool.n_kv_heads} * pool.head_dim;
  std::vector<float> head_rows;
  for (int64_t pos = first_position; pos < first_position + n_positions;) {
    const int64_t run_end = std::min(first_position + n_positions, (pos / kKvPageTokens + 1) * kKvPageTokens);
    const int run = static_cast<int>(run_end - pos);
    head_rows.resize(static_cast<size_t>(run) * static_cast<size_t>(pool.head_dim));
    for (int head = 0; head < pool.n_kv_heads; ++head) {
      // Gather this head's rows of the run ([token][head][dim] -> [token][dim]).
      for (int r = 0; r < run; ++r) {
        const float* source = rows + (pos - first_position + r) * token_values + int64_t{head} * pool.head_dim;
        std::copy(source, source + pool.head_dim, head_rows.begin() + int64_t{r} * pool.head_dim);
      }
      fp8_append_rows(pool.slab(page_table[pos / kKvPageTokens], head), static_cast<int>(pos % kKvPageTokens),
                      head_rows.data(), run);
    }
    pos = run_end;
  }
}

}  // namespace deltainfer
