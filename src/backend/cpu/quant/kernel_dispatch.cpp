// The one place that decides which instruction set the quantized kernels use on this CPU.
#include "backend/cpu/quant/dot_kernels.h"

namespace deltainfer::backend::cpu::quant {
namespace {

std::vector<Isa> detect_isas() {
  std::vector<Isa> isas{Isa::Scalar};
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c")) {
    isas.push_back(Isa::Avx2);
    if (__builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512f")) {
      isas.push_back(Isa::Avx2Vnni);
    }
  }
#endif
  return isas;
}

}  // namespace

bool has_quantized_kernel(io::GgmlType type) { return scalar_dot(type) != nullptr; }

ActivationFormat activation_format(io::GgmlType type) {
  switch (type) {
    case io::GgmlType::Q4_K:
    case io::GgmlType::Q5_K:
    case io::GgmlType::Q6_K: return ActivationFormat::Q8K;
    default: return ActivationFormat::Q8;
  }
}

const std::vector<Isa>& supported_isas() {
  static const std::vector<Isa> isas = detect_isas();
  return isas;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Avx2: return "avx2";
    case Isa::Avx2Vnni: return "avx2+avx512vnni";
    default: return "scalar";
  }
}

RowDot dot_kernel(io::GgmlType type, Isa isa) {
  const RowDot simd = isa != Isa::Scalar ? avx2_dot(type) : nullptr;
  return simd != nullptr ? simd : scalar_dot(type);
}

RowDot4 dot4_kernel(io::GgmlType type, Isa isa) { return isa != Isa::Scalar ? avx2_dot4(type) : nullptr; }

WeightRowsDot4 weight_rows_dot4_kernel(io::GgmlType type, Isa isa) {
  if (isa == Isa::Scalar) return nullptr;
  const WeightRowsDot4 vnni = isa == Isa::Avx2Vnni ? avx2_vnni_weight_rows_dot4(type) : nullptr;
  return vnni != nullptr ? vnni : avx2_weight_rows_dot4(type);
}

WeightTile weight_tile_kernel(io::GgmlType type, Isa isa) {
  switch (isa) {
    case Isa::Avx2Vnni: return avx2_vnni_weight_tile(type);
    case Isa::Avx2: return avx2_weight_tile(type);
    default: return {};
  }
}

}  // namespace deltainfer::backend::cpu::quant
