#pragma once
// Large batches (prefill) against a quantized weight: dequantize the weight in panels of rows to
// f32 and multiply with BLAS. On 2 AVX2 cores OpenBLAS's f32 GEMM runs 1.5-3x the MAC rate of the
// 8-bit dot kernels, and dequantizing a panel costs ~0.4 ns per weight, spread over the batch's
// rows. Memory stays quantized: the f32 panel is a bounded scratch buffer. The result equals the
// f32 path (same dequantized values, same GEMM). Decode (one row) keeps the 8-bit kernels, which
// read 4-8x fewer weight bytes.
#include <cstdint>

#include "backend/cpu/quant/quantized_matrix.h"

namespace deltainfer::backend::cpu::quant {

// From this many activation rows on, panel_matmul beats quant_matmul's one-row kernels (measured on
// SmolLM2 shapes); the types with tile kernels stay on quant_matmul up to kTileMaxRows
// (quant_matmul.h: tiles_beat_panels).
constexpr int64_t kPanelMinRows = 32;

// Whether panel_matmul handles `type` (io::dequantize must know it).
bool panel_matmul_supports(io::GgmlType type);

// y[n, out] = x[n, in] · W^T (+ bias), as quant_matmul but through f32 panels.
void panel_matmul(const float* x, const QuantizedMatrix& weight, const float* bias, float* y, int64_t n, int threads);

}  // namespace deltainfer::backend::cpu::quant
