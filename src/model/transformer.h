#pragma once
// Transformer: one Llama-family decoder with its KV cache, run by a backend (backend/cpu,
// backend/cuda). The engine drives it; the attention policy inside decides what each query sees.
#include <cstdint>

#include "model/model_config.h"

namespace deltainfer::model {

enum class LogitsFor { LastToken, AllTokens };

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
};

}  // namespace deltainfer::model
