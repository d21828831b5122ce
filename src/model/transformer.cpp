#include "model/transformer.h"

#include "core/error.h"

namespace deltainfer::model {

void check_forward_tokens(const ModelConfig& config, int64_t cached, int64_t capacity, const int32_t* tokens,
                          int64_t n) {
  if (n <= 0) throw_error("forward() needs at least one token");
  if (cached + n > capacity) {
    throw_input_error("sequence of {} tokens does not fit the KV cache of {} positions", cached + n, capacity);
  }
  for (int64_t i = 0; i < n; ++i) {
    if (tokens[i] < 0 || tokens[i] >= config.vocab_size) {
      throw_input_error("token id {} is outside the vocabulary (0..{})", tokens[i], config.vocab_size - 1);
    }
  }
}

int32_t Transformer::forward_and_sample(const int32_t*, int64_t, const DeviceSampling&) {
  throw_error("this backend does not sample on a device; use forward() and a host sampler");
}

}  // namespace deltainfer::model
