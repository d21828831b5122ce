#include "model/transformer.h"

#include "core/error.h"

namespace deltainfer::model {

int32_t Transformer::forward_and_sample(const int32_t*, int64_t, const DeviceSampling&) {
  throw_error("this backend does not sample on a device; use forward() and a host sampler");
}

}  // namespace deltainfer::model
