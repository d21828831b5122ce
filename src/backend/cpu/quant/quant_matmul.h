#pragma once
// y[n, out] = x[n, in] · W[out, in]^T (+ bias[out]) with W kept in its GGUF type: the rows of x
// are quantized to 8 bits, then every output is a per-block integer dot product (dot_kernels.h),
// spread over the threads by tiles of output rows.
#include <cstdint>

#include "backend/cpu/quant/dot_kernels.h"
#include "backend/cpu/quant/quantized_matrix.h"

namespace deltainfer::backend::cpu::quant {

// threads: 0 for one per hardware thread. Uses the best instruction set of this CPU.
void quant_matmul(const float* x, const QuantizedMatrix& weight, const float* bias, float* y, int64_t n,
                  int threads = 0);

// The same with a chosen instruction set (tests compare every variant against the scalar one).
void quant_matmul(const float* x, const QuantizedMatrix& weight, const float* bias, float* y, int64_t n,
                  int threads, Isa isa);

}  // namespace deltainfer::backend::cpu::quant
