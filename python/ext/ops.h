#pragma once
// The kernels of src/backend/cuda bound one-to-one: each function reads sizes from its tensors,
// fills the kernel's argument struct and launches on the caller's stream. Argument checks with
// messages for users live in deltainfer/ops.py; the kernels' own checks throw InputError.
#include <nanobind/nanobind.h>

namespace deltainfer::python {

void bind_prefill(nanobind::module_& m);
void bind_decode(nanobind::module_& m);
void bind_kv(nanobind::module_& m);

}  // namespace deltainfer::python
