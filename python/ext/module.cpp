// deltainfer._ext: the CUDA kernels on DLPack tensors. Errors: InputError -> ValueError,
// other deltainfer::Error (CUDA failures) -> RuntimeError.
#include <nanobind/nanobind.h>

#include "core/error.h"
#include "ops.h"

namespace nb = nanobind;

NB_MODULE(_ext, m) {
  nb::register_exception_translator([](const std::exception_ptr& p, void*) {
    try {
      std::rethrow_exception(p);
    } catch (const deltainfer::InputError& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    }
  });
  deltainfer::python::bind_prefill(m);
  deltainfer::python::bind_decode(m);
  deltainfer::python::bind_kv(m);
}
