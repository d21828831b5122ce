// TidalDecode on the GPU: DELTA's selection and sparse decode without the recency window.
#include <memory>

#include "backend/cuda/methods/shared_set_decode.h"

namespace deltainfer::cuda::methods {

CudaDecodeMethodInfo tidal() {
  CudaDecodeMethodInfo m;
  m.create = [](const CudaDecodeSetup& setup) -> std::unique_ptr<CudaDecodeMethod> {
    const PageSelectConfig select = delta_select_config(setup.config.decode, /*recency=*/0);
    return std::make_unique<SharedSetDecode>(setup, select, token_set_capacity(select), /*delta_select=*/true);
  };
  return m;
}

}  // namespace deltainfer::cuda::methods
