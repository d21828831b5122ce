#pragma once
// The ggml tensor storage types that a GGUF file may name, with their block geometry: a tensor of
// n elements occupies n / block_size blocks of type_size bytes each. Ids follow ggml.h.
#include <cstdint>
#include <optional>
#include <string>

namespace deltainfer::io {

enum class GgmlType : uint32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
  Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15,
  IQ2_XXS = 16, IQ2_XS = 17, IQ3_XXS = 18, IQ1_S = 19, IQ4_NL = 20, IQ3_S = 21, IQ2_S = 22,
  IQ4_XS = 23, I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28, IQ1_M = 29, BF16 = 30,
  TQ1_0 = 34, TQ2_0 = 35, MXFP4 = 39,
};

struct GgmlTypeTraits {
  const char* name;
  int64_t block_size;  // elements per block
  int64_t type_size;   // bytes per block
};

// The traits of a known type id, or nullopt for an id ggml does not define (or no longer does).
std::optional<GgmlTypeTraits> ggml_type_traits(uint32_t type_id);
const GgmlTypeTraits& ggml_type_traits(GgmlType type);
const char* ggml_type_name(GgmlType type);

// Bytes taken by n elements of `type`; n must be a multiple of the block size (unchecked).
uint64_t ggml_nbytes(GgmlType type, uint64_t n_elements);

}  // namespace deltainfer::io
