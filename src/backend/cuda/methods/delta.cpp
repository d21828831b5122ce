// DELTA decode on the GPU: Δ-layers attend densely and select one token set per sequence
// (delta_decode_select, with the recency window), the Sparse layers above attend it.
#include <memory>

#include "backend/cuda/methods/shared_set_decode.h"

namespace deltainfer::cuda::methods {

CudaDecodeMethodInfo delta() {
  CudaDecodeMethodInfo m;
  m.create = [](const CudaDecodeSetup& setup) -> std::unique_ptr<CudaDecodeMethod> {
    const PageSelectConfig select = delta_select_config(setup.config.decode, setup.config.decode.recency);
    return std::make_unique<SharedSetDecode>(setup, select, token_set_capacity(select), /*delta_select=*/true);
  };
  return m;
}

}  // namespace deltainfer::cuda::methods
