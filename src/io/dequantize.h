#pragma once
// ggml storage types -> float, bit-exact with ggml's reference dequantize_row_* (ggml-quants.c):
// F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K, IQ4_NL, IQ4_XS.
// The per-block code is in dequantize_{legacy,kquants,iquants}.cpp.
#include <cstdint>

#include "io/ggml_type.h"

namespace deltainfer::io {

bool can_dequantize(GgmlType type);
// "F32, F16, BF16, Q4_0, ..." for messages.
const char* dequantizable_type_names();

// Dequantizes n elements stored at src (which starts at a block boundary) into dst. Throws
// InputError naming the type when it is not supported or n is not a multiple of its block size.
void dequantize(GgmlType type, const uint8_t* src, float* dst, int64_t n);

// Dequantizes rows [first_row, first_row + n_rows) of a matrix whose rows hold row_length
// elements each (row_length a multiple of the block size); tensor_data is the matrix's start.
void dequantize_rows(GgmlType type, const uint8_t* tensor_data, int64_t row_length, int64_t first_row, int64_t n_rows,
                     float* dst);

}  // namespace deltainfer::io
