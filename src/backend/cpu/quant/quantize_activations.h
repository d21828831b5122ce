#pragma once
// f32 activation rows -> 8-bit blocks, done on the fly before a quantized matmul (as llama.cpp
// does), so the weight-by-activation products become integer dot products per block.
#include <cstdint>

#include "backend/cpu/quant/block_layouts.h"

namespace deltainfer::backend::cpu::quant {

// n elements (a multiple of 32) -> n / 32 blocks; d = max|x| / 127, qs = round(x / d).
void quantize_row_q8(const float* x, Q8Block* blocks, int64_t n);

// n elements (a multiple of 256) -> n / 256 blocks, with the 16-element sums filled in.
void quantize_row_q8k(const float* x, Q8KBlock* blocks, int64_t n);

}  // namespace deltainfer::backend::cpu::quant
