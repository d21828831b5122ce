#pragma once
// A weight matrix [rows = out, cols = in] kept in its GGUF storage type: the raw blocks, row after
// row, exactly as the file stores them (a row is cols / block_size blocks).
#include <cstdint>
#include <vector>

#include "io/ggml_type.h"

namespace deltainfer::backend::cpu::quant {

struct QuantizedMatrix {
  io::GgmlType type = io::GgmlType::F32;
  int64_t rows = 0;
  int64_t cols = 0;
  std::vector<uint8_t> blocks;

  int64_t blocks_per_row() const { return cols / io::ggml_type_traits(type).block_size; }
  int64_t row_bytes() const { return blocks_per_row() * io::ggml_type_traits(type).type_size; }
};

}  // namespace deltainfer::backend::cpu::quant
