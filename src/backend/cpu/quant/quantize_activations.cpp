#include "backend/cpu/quant/quantize_activations.h"

#include <cmath>

namespace deltainfer::backend::cpu::quant {
namespace {

// Symmetric 8-bit quantization of `count` values; returns the scale d (0 for an all-zero run).
float quantize_symmetric(const float* x, int8_t* q, int count) {
  // Plain comparisons and truncation (not fmax / nearbyint, which are library calls on baseline
  // x86-64) so that the compiler vectorizes both loops.
  float amax = 0.0f;
  for (int i = 0; i < count; ++i) {
    const float magnitude = std::fabs(x[i]);
    amax = magnitude > amax ? magnitude : amax;
  }
  const float d = amax / 127.0f;
  const float inverse = d != 0.0f ? 1.0f / d : 0.0f;
  for (int i = 0; i < count; ++i) {
    const float scaled = x[i] * inverse;
    q[i] = static_cast<int8_t>(static_cast<int>(scaled + (scaled >= 0.0f ? 0.5f : -0.5f)));  // half away from 0
  }
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
