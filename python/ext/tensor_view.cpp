#include "tensor_view.h"

#include "core/error.h"

namespace deltainfer::python {
namespace {

struct ElemInfo {
  uint8_t code;
  uint8_t bits;
  const char* name;
};

ElemInfo info(Elem elem) {
  using Code = nb::dlpack::dtype_code;
  switch (elem) {
    case Elem::kBf16: return {static_cast<uint8_t>(Code::Bfloat), 16, "bfloat16"};
    case Elem::kF32: return {static_cast<uint8_t>(Code::Float), 32, "float32"};
    case Elem::kI32: return {static_cast<uint8_t>(Code::Int), 32, "int32"};
    case Elem::kU8: return {static_cast<uint8_t>(Code::UInt), 8, "uint8"};
  }
  return {0, 0, "?"};
}

bool c_contiguous(const Tensor& t) {
  int64_t expected = 1;
  for (size_t i = t.ndim(); i-- > 0;) {
    if (t.shape(i) != 1 && t.stride(i) != expected) return false;
    expected *= static_cast<int64_t>(t.shape(i));
  }
  return true;
}

}  // namespace

void* checked_data(const Tensor& t, Elem elem, const char* name) {
  const ElemInfo want = info(elem);
  const nb::dlpack::dtype got = t.dtype();
  if (got.code != want.code || got.bits != want.bits || got.lanes != 1) {
    throw_input_error("{}: expected a {} tensor (DLPack code {}, {} bits), got code {}, {} bits", name, want.name,
                      want.code, want.bits, got.code, got.bits);
  }
  if (!c_contiguous(t)) throw_input_error("{}: expected a contiguous tensor", name);
  return t.data();
}

}  // namespace deltainfer::python
