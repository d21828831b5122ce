#include "backend/cpu/quant/quantize_activations.h"

#include <cmath>

namespace deltainfer::backend::cpu::quant {
namespace {

// Symmetric 8-bit quantization of `count` values; returns the scale d (0 for an all-zero run).
float quantize_symmetric(const float* x, int8_t* q, int count) {
  float amax = 0.0f;
  for (int i = 0; i < count; ++i) amax = std::fmax(amax, std::fabs(x[i]));
  const float d = amax / 127.0f;
  const float inverse = d != 0.0f ? 1.0f / d : 0.0f;
  for (int i = 0; i < count; ++i) q[i] = static_cast<int8_t>(std::nearbyint(x[i] * inverse));
  return d;
}

}  // namespace

void quantize_row_q8(const float* x, Q8Block* blocks, int64_t n) {
  for (int64_t b = 0; b < n / kBlock; ++b) {
    Q8Block& block = blocks[b];
    block.d = quantize_symmetric(x + b * kBlock, block.qs, kBlock);
    int sum = 0;
    for (int8_t q : block.qs) sum += q;
    block.sum = block.d * static_cast<float>(sum);
  }
}

void quantize_row_q8k(const float* x, Q8KBlock* blocks, int64_t n) {
  for (int64_t b = 0; b < n / kSuperBlock; ++b) {
    Q8KBlock& block = blocks[b];
    block.d = quantize_symmetric(x + b * kSuperBlock, block.qs, kSuperBlock);
    for (int g = 0; g < kSuperBlock / 16; ++g) {
      int sum = 0;
      for (int i = 0; i < 16; ++i) sum += block.qs[16 * g + i];
      block.bsums[g] = static_cast<int16_t>(sum);
    }
  }
}

}  // namespace deltainfer::backend::cpu::quant
