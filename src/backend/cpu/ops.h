#pragma once
// Dense f32 building blocks of the CPU backend. Matrices are row-major; a weight W has shape
// [out, in] and maps x -> W x. These are also the CPU twins the CUDA kernels are tested against.
#include <cstdint>
#include <initializer_list>

#include "backend/cpu/weight.h"
#include "model/model_config.h"

namespace deltainfer::backend::cpu {

// y[n, out] = x[n, in] · W[out, in]^T (+ bias[out] when bias != nullptr). Uses BLAS.
void matmul(const float* x, const float* weight, const float* bias, float* y, int64_t n, int64_t in,
            int64_t out);

// The same for a model weight, f32 or quantized: a few rows of x against a quantized weight are
// quantized to 8 bits on the fly (quant/quant_matmul.h), a batch of kPanelMinRows or more goes
// through dequantized f32 panels (quant/panel_matmul.h) unless the type's 8-bit tile kernels beat
// the panels (quant::tiles_beat_panels).
// threads: 0 for one per hardware thread (used by the quantized path; BLAS keeps its own).
void matmul(const float* x, const Weight& weight, const float* bias, float* y, int64_t n, int threads = 0);

// Row `row` of `table` (an embedding lookup) as f32 into out[0..cols): copied, or dequantized from
// the row's blocks when the table is kept quantized.
void embedding_row(const Weight& table, int64_t row, float* out);

// One product of matmul_shared_input: y = x · weight^T (+ bias when not nullptr).
struct MatmulTarget {
  const Weight& weight;
  const float* bias;
  float* y;
};

// Several weights applied to the same x (q/k/v, gate/up). Where every weight is quantized and the
// batch is small (decode), x is quantized once and all products run as one job on the thread pool;
// otherwise each goes through matmul above. The results are the same either way.
void matmul_shared_input(const float* x, int64_t n, std::initializer_list<MatmulTarget> targets, int threads = 0);

// Each of the n rows of length dim: y = x / rms(x) * gain.
void rmsnorm(const float* x, const float* gain, float* y, int64_t n, int64_t dim, float eps);

// Inverse frequencies of the rotary embedding (head_dim / 2 of them), Llama-3 scaling included.
void rope_inverse_frequencies(const model::ModelConfig& config, float* inv_freq);

// Rotates n tokens × n_heads heads of `x` ([n][n_heads][head_dim]) in place; token t sits at
// position positions_start + t.
void apply_rope(float* x, int64_t n, int64_t n_heads, int64_t head_dim, int64_t positions_start,
                const float* inv_freq, model::RopeStyle style);

// gate[i] = silu(gate[i]) * up[i] for count elements.
void swiglu(float* gate, const float* up, int64_t count);

// y[i] += x[i].
void add_in_place(float* y, const float* x, int64_t count);

}  // namespace deltainfer::backend::cpu
