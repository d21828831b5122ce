#pragma once
// Transformer: one Llama-family decoder with its KV cache, run by a backend (backend/cpu,
// backend/cuda). The engine drives it; the attention policy inside decides what each query sees.
#include <cstdint>

#include "model/model_config.h"

namespace deltainfer::model {

enum class LogitsFor { LastToken, AllTokens };

// How a backend that samples on its device picks the next token: greedy when temperature is 0,
// else temperature + top-k (0: all) + top-p, with kept sets that are thresholds on the logit
// (ties stay in), drawn from a counter-based generator keyed by seed and position.
struct DeviceSampling {
  float temperature = 0.0f;
  int top_k = 0;
  float top_p = 1.0f;
  uint64_t seed = 0;

  bool operator==(const DeviceSampling& o) const {
    return temperature == o.temperature && top_k == o.top_k && top_p == o.top_p && seed == o.seed;
  }
  bool operator!=(const DeviceSampling& o) const { return !(*this == o); }
};

// What every backend's forward() refuses: no tokens (Error), more tokens than the cache has room
// for after `cached`, or an id outside the vocabulary (InputError).
void check_forward_tokens(const ModelConfig& config, int64_t cached, int64_t capacity, const int32_t* tokens,
                          int64_t n);

class Transformer {
 public:
  virtual ~Transformer() = default;

  virtual const ModelConfig& config() const = 0;
  // Number of positions the KV cache holds.
  virtual int64_t capacity() const = 0;
  // Positions currently cached; forward() appends after them.
  virtual int64_t cached_tokens() const = 0;

  // Runs `n` tokens at positions [cached_tokens(), cached_tokens() + n) and appends their keys and
  // values to the cache. A call with n == 1 after a prompt is a decode step; anything else is a
  // prefill chunk. Writes vocab_size logits for the last token, or for every token (n rows).
  virtual void forward(const int32_t* tokens, int64_t n, LogitsFor which, float* logits) = 0;

  // Forgets every cached position >= n_tokens (0 starts a new sequence).
  virtual void truncate(int64_t n_tokens) = 0;

  // Backends that choose the next token on their device (no logits copied to the host) say so
  // here and implement forward_and_sample: forward() of the tokens, then the token that follows
  // them under `sampling`. The others throw from it.
  virtual bool samples_on_device() const { return false; }
  virtual int32_t forward_and_sample(const int32_t* tokens, int64_t n, const DeviceSampling& sampling);
};

}  // namespace deltainfer::model
