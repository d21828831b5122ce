#pragma once
// Device pointers out of DLPack tensors (nanobind ndarrays). The Python wrappers (deltainfer/ops.py)
// check shapes; here each pointer is taken only after its dtype, device and C-contiguity are
// checked, so a wrapper bug raises instead of handing a kernel a wrong buffer.
#include <nanobind/ndarray.h>

#include <cstdint>
#include <optional>

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

namespace deltainfer::python {

namespace nb = nanobind;
using Tensor = nb::ndarray<nb::device::cuda>;

enum class Elem { kBf16, kF32, kI32, kU8 };

// Throws InputError (ValueError in Python) naming the tensor unless it is a C-contiguous CUDA tensor
// of `elem`; returns its data pointer.
void* checked_data(const Tensor& t, Elem elem, const char* name);

inline __nv_bfloat16* bf16_data(const Tensor& t, const char* name) {
  return static_cast<__nv_bfloat16*>(checked_data(t, Elem::kBf16, name));
}
inline float* f32_data(const Tensor& t, const char* name) {
  return static_cast<float*>(checked_data(t, Elem::kF32, name));
}
inline int32_t* i32_data(const Tensor& t, const char* name) {
  return static_cast<int32_t*>(checked_data(t, Elem::kI32, name));
}
inline float* optional_f32_data(const std::optional<Tensor>& t, const char* name) {
  return t ? f32_data(*t, name) : nullptr;
}
inline int32_t* optional_i32_data(const std::optional<Tensor>& t, const char* name) {
  return t ? i32_data(*t, name) : nullptr;
}
inline __nv_bfloat16* optional_bf16_data(const std::optional<Tensor>& t, const char* name) {
  return t ? bf16_data(*t, name) : nullptr;
}

// torch.cuda.current_stream().cuda_stream crosses as an integer.
inline cudaStream_t as_stream(uintptr_t handle) { return reinterpret_cast<cudaStream_t>(handle); }

}  // namespace deltainfer::python
