#include "io/dequantize.h"

#include "core/error.h"
#include "io/dequantize_blocks.h"

namespace deltainfer::io {
namespace {

using BlockFn = void (*)(const uint8_t*, float*);

BlockFn block_function(GgmlType type) {
  switch (type) {
    case GgmlType::F32: return blocks::f32;
    case GgmlType::F16: return blocks::f16;
    case GgmlType::BF16: return blocks::bf16;
    case GgmlType::Q4_0: return blocks::q4_0;
    case GgmlType::Q4_1: return blocks::q4_1;
    case GgmlType::Q5_0: return blocks::q5_0;
    case GgmlType::Q5_1: return blocks::q5_1;
    case GgmlType::Q8_0: return blocks::q8_0;
    case GgmlType::Q2_K: return blocks::q2_k;
    case GgmlType::Q3_K: return blocks::q3_k;
    case GgmlType::Q4_K: return blocks::q4_k;
    case GgmlType::Q5_K: return blocks::q5_k;
    case GgmlType::Q6_K: return blocks::q6_k;
    case GgmlType::Q8_K: return blocks::q8_k;
    case GgmlType::IQ4_NL: return blocks::iq4_nl;
    case GgmlType::IQ4_XS: return blocks::iq4_xs;
    default: return nullptr;
  }
}

}  // namespace

bool can_dequantize(GgmlType type) { return block_function(type) != nullptr; }

const char* dequantizable_type_names() {
  return "F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K, IQ4_NL, IQ4_XS";
}

void dequantize(GgmlType type, const uint8_t* src, float* dst, int64_t n) {
  const BlockFn fn = block_function(type);
  if (fn == nullptr) {
    throw_input_error("tensor type {} cannot be dequantized (supported: {})", ggml_type_name(type),
                      dequantizable_type_names());
  }
  const GgmlTypeTraits& traits = ggml_type_traits(type);
  if (n < 0 || n % traits.block_size != 0) {
    throw_input_error("cannot dequantize {} elements of type {}: not a multiple of its block size {}", n, traits.name,
                      traits.block_size);
  }
  const int64_t n_blocks = n / traits.block_size;
  for (int64_t b = 0; b < n_blocks; ++b) fn(src + b * traits.type_size, dst + b * traits.block_size);
}

void dequantize_rows(GgmlType type, const uint8_t* tensor_data, int64_t row_length, int64_t first_row, int64_t n_rows,
                     float* dst) {
  const GgmlTypeTraits& traits = ggml_type_traits(type);
  if (row_length <= 0 || row_length % traits.block_size != 0) {
    throw_input_error("cannot dequantize rows of {} elements of type {}: not a multiple of its block size {}",
                      row_length, traits.name, traits.block_size);
  }
  const int64_t row_bytes = row_length / traits.block_size * traits.type_size;
  dequantize(type, tensor_data + first_row * row_bytes, dst, n_rows * row_length);
}

}  // namespace deltainfer::io
