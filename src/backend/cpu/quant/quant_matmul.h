#pragma once
// y[n, out] = x[n, in] · W[out, in]^T (+ bias[out]) with W kept in its GGUF type: the rows of x
// are quantized to 8 bits, then every output is a per-block integer dot product (dot_kernels.h),
// spread over the threads by tiles of output rows.
#include <cstdint>

#include "backend/cpu/quant/dot_kernels.h"
#include "backend/cpu/quant/quantized_matrix.h"

namespace deltainfer::backend::cpu::quant {

// One product of a batch that shares its input: y = x · weight^T (+ bias).
struct QuantProduct {
  const QuantizedMatrix* weight;
  const float* bias;  // nullptr for none
  float* y;           // [n, weight->rows]
};

// Below this many rows a batch of a type with tile kernels (the 32-element types) runs faster
// through quant_matmul than through panel_matmul (kPanelMinRows, panel_matmul.h); from here on the
// panels' f32 GEMM wins (measured: docs/notes/cpu-quant-kernels.md, bench/cpu/quant_prefill_bench).
constexpr int64_t kTileMaxRows = 128;

// Whether a batch of n rows against a weight of `type` goes through quant_matmul's tile kernels
// rather than panel_matmul on this CPU: n < kTileMaxRows and the type has a tile kernel for this
// CPU's best instruction set.
bool tiles_beat_panels(io::GgmlType type, int64_t n);

// threads: 0 for one per hardware thread. Uses the best instruction set of this CPU.
void quant_matmul(const float* x, const QuantizedMatrix& weight, const float* bias, float* y, int64_t n,
                  int threads = 0);

// The same with a chosen instruction set (tests compare every variant against the scalar one).
void quant_matmul(const float* x, const QuantizedMatrix& weight, const float* bias, float* y, int64_t n,
                  int threads, Isa isa);

// Several weights applied to the same x (q/k/v, gate/up): x is quantized once per activation
// format and all products run as one job on the pool, so a decode step pays one dispatch for them.
// Every weight has x's width (cols) and a quantized kernel.
void quant_matmul_many(const float* x, int64_t n, const QuantProduct* products, int count, int threads, Isa isa);

}  // namespace deltainfer::backend::cpu::quant
