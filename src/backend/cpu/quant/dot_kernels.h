#pragma once
// Dot products of one quantized weight row with one quantized activation row, per weight type
// and instruction set. The instruction set is picked once, at run time, for the CPU at hand
// (kernel_dispatch.cpp); every SIMD variant computes the same integer block sums as the scalar
// reference and differs from it only in the order of the f32 accumulation.
#include <cstdint>
#include <vector>

#include "io/ggml_type.h"

namespace deltainfer::backend::cpu::quant {

// weight_row: n_blocks blocks of the weight type; activations: n_blocks Q8Block (32-element
// types) or Q8KBlock (k-quants) covering the same elements.
using RowDot = float (*)(const uint8_t* weight_row, const void* activations, int64_t n_blocks);

// The same for four activation rows at once (out[r] = dot(weight_row, activations[r])), where an
// instruction set has it: the weight blocks are unpacked once for the four.
using RowDot4 = void (*)(const uint8_t* weight_row, const void* const* activations, int64_t n_blocks, float* out);

// Four consecutive weight rows (row_bytes apart) against one activation row: out[k] = dot(row k,
// activations). The decode path: each activation block is loaded once for the four rows, and the
// four independent accumulations keep the core busy where one row's chain of dependent adds would
// stall it.
using WeightRowsDot4 = void (*)(const uint8_t* first_row, int64_t row_bytes, const void* activations, int64_t n_blocks,
                                float* out);

// Four consecutive weight rows (row_bytes apart) against `rows` activation rows (a tile; prefill):
// out[4 j + k] = dot(weight row k, activations[j]). Each weight block is unpacked once for the
// activation rows and each activation block loaded once for the four weight rows; every output is
// bit for bit what WeightRowsDot4 gives for that weight row and activation row.
using WeightTileDot = void (*)(const uint8_t* first_row, int64_t row_bytes, const void* const* activations,
                               int64_t n_blocks, float* out);
struct WeightTile {
  WeightTileDot dot = nullptr;  // nullptr: no tile kernel for the type and instruction set
  int rows = 0;                 // activation rows per call
};

enum class ActivationFormat { Q8, Q8K };
// Avx2Vnni: AVX2 plus AVX512-VNNI/VL (Zen 4, Ice Lake and later); only the decode kernel of the
// 32-element types differs from AVX2 there (vpdpbusd), with the same results bit for bit.
enum class Isa { Scalar, Avx2, Avx2Vnni };

// Types with a quantized kernel: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K.
bool has_quantized_kernel(io::GgmlType type);
ActivationFormat activation_format(io::GgmlType type);  // type must have a kernel

// The variants of each instruction set (defined in dot_<isa>.cpp); nullptr for a type without one.
RowDot scalar_dot(io::GgmlType type);
RowDot avx2_dot(io::GgmlType type);
RowDot4 avx2_dot4(io::GgmlType type);
WeightRowsDot4 avx2_weight_rows_dot4(io::GgmlType type);
WeightRowsDot4 avx2_vnni_weight_rows_dot4(io::GgmlType type);
WeightTile avx2_weight_tile(io::GgmlType type);  // 32-element types only
WeightTile avx2_vnni_weight_tile(io::GgmlType type);

// The instruction sets this CPU runs, best last; always starts with Scalar.
const std::vector<Isa>& supported_isas();
const char* isa_name(Isa isa);
// The kernel of `type` for `isa` (falls back to scalar where the ISA has no variant of the type).
RowDot dot_kernel(io::GgmlType type, Isa isa);
// The four-row kernel of `type` for `isa`, or nullptr (then callers use dot_kernel four times).
RowDot4 dot4_kernel(io::GgmlType type, Isa isa);
// The four-weight-row kernel of `type` for `isa`, or nullptr (then callers use dot_kernel per row).
WeightRowsDot4 weight_rows_dot4_kernel(io::GgmlType type, Isa isa);
// The tile kernel of `type` for `isa` (32-element types on AVX2 and AVX2+VNNI), or an empty one.
WeightTile weight_tile_kernel(io::GgmlType type, Isa isa);

}  // namespace deltainfer::backend::cpu::quant
