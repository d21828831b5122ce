#include "io/ggml_type.h"

#include <array>

namespace deltainfer::io {
namespace {

struct TypeEntry {
  GgmlType type;
  GgmlTypeTraits traits;
};

constexpr int64_t kQK = 256;  // super-block size of the k-quants and i-quants

constexpr std::array<TypeEntry, 32> kTypes = {{
    {GgmlType::F32, {"F32", 1, 4}},
    {GgmlType::F16, {"F16", 1, 2}},
    {GgmlType::Q4_0, {"Q4_0", 32, 2 + 16}},
    {GgmlType::Q4_1, {"Q4_1", 32, 2 + 2 + 16}},
    {GgmlType::Q5_0, {"Q5_0", 32, 2 + 4 + 16}},
    {GgmlType::Q5_1, {"Q5_1", 32, 2 + 2 + 4 + 16}},
    {GgmlType::Q8_0, {"Q8_0", 32, 2 + 32}},
    {GgmlType::Q8_1, {"Q8_1", 32, 4 + 4 + 32}},
    {GgmlType::Q2_K, {"Q2_K", kQK, 2 + 2 + kQK / 16 + kQK / 4}},
    {GgmlType::Q3_K, {"Q3_K", kQK, 2 + kQK / 4 + kQK / 8 + 12}},
    {GgmlType::Q4_K, {"Q4_K", kQK, 2 + 2 + kQK / 2 + 12}},
    {GgmlType::Q5_K, {"Q5_K", kQK, 2 + 2 + kQK / 2 + kQK / 8 + 12}},
    {GgmlType::Q6_K, {"Q6_K", kQK, 2 + kQK / 2 + kQK / 4 + kQK / 16}},
    {GgmlType::Q8_K, {"Q8_K", kQK, 4 + kQK + kQK / 8}},
    {GgmlType::IQ2_XXS, {"IQ2_XXS", kQK, 2 + kQK / 4}},
    {GgmlType::IQ2_XS, {"IQ2_XS", kQK, 2 + kQK / 4 + kQK / 32}},
    {GgmlType::IQ3_XXS, {"IQ3_XXS", kQK, 2 + kQK / 4 + kQK / 8}},
    {GgmlType::IQ1_S, {"IQ1_S", kQK, 2 + kQK / 8 + kQK / 16}},
    {GgmlType::IQ4_NL, {"IQ4_NL", 32, 2 + 16}},
    {GgmlType::IQ3_S, {"IQ3_S", kQK, 2 + kQK / 4 + kQK / 8 + kQK / 32 + 4}},
    {GgmlType::IQ2_S, {"IQ2_S", kQK, 2 + kQK / 4 + kQK / 16}},
    {GgmlType::IQ4_XS, {"IQ4_XS", kQK, 2 + 2 + kQK / 2 + kQK / 64}},
    {GgmlType::I8, {"I8", 1, 1}},
    {GgmlType::I16, {"I16", 1, 2}},
    {GgmlType::I32, {"I32", 1, 4}},
    {GgmlType::I64, {"I64", 1, 8}},
    {GgmlType::F64, {"F64", 1, 8}},
    {GgmlType::IQ1_M, {"IQ1_M", kQK, kQK / 8 + kQK / 16 + kQK / 32}},
    {GgmlType::BF16, {"BF16", 1, 2}},
    {GgmlType::TQ1_0, {"TQ1_0", kQK, 2 + 4 * 13}},
    {GgmlType::TQ2_0, {"TQ2_0", kQK, 2 + 64}},
    {GgmlType::MXFP4, {"MXFP4", 32, 1 + 16}},
}};

const TypeEntry* find_entry(uint32_t type_id) {
  for (const TypeEntry& entry : kTypes) {
    if (static_cast<uint32_t>(entry.type) == type_id) return &entry;
  }
  return nullptr;
}

}  // namespace

std::optional<GgmlTypeTraits> ggml_type_traits(uint32_t type_id) {
  const TypeEntry* entry = find_entry(type_id);
  if (entry == nullptr) return std::nullopt;
  return entry->traits;
}

const GgmlTypeTraits& ggml_type_traits(GgmlType type) {
  static constexpr GgmlTypeTraits kUnknown{"unknown", 1, 1};
  const TypeEntry* entry = find_entry(static_cast<uint32_t>(type));
  return entry != nullptr ? entry->traits : kUnknown;
}

const char* ggml_type_name(GgmlType type) { return ggml_type_traits(type).name; }

uint64_t ggml_nbytes(GgmlType type, uint64_t n_elements) {
  const GgmlTypeTraits& traits = ggml_type_traits(type);
  return n_elements / static_cast<uint64_t>(traits.block_size) * static_cast<uint64_t>(traits.type_size);
}

}  // namespace deltainfer::io
