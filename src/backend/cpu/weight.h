#pragma once
// A 2-D weight [rows = out, cols = in] of the CPU backend, mapping x -> W x: either f32 values
// (the reference path, multiplied with BLAS) or the raw GGUF blocks of a type that has a
// quantized kernel (multiplied by quant/quant_matmul.h).
#include <cstdint>
#include <optional>
#include <vector>

#include "backend/cpu/quant/quantized_matrix.h"

namespace deltainfer::backend::cpu {

struct Weight {
  int64_t rows = 0;
  int64_t cols = 0;
  std::vector<float> values;  // f32 storage, unless quantized
  std::optional<quant::QuantizedMatrix> quantized;

  bool is_quantized() const { return quantized.has_value(); }
  const float* f32() const { return values.data(); }
};

}  // namespace deltainfer::backend::cpu
