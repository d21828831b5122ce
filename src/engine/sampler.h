#pragma once
// Picks the next token from logits: greedy at temperature 0, else temperature + top-k + top-p
// sampling from a seeded generator (same seed, same tokens). Kept sets are thresholds on the
// logit: tokens tied with the k-th (top-k) or with the nucleus's least likely (top-p) stay in.
#include <cstdint>
#include <random>
#include <vector>

namespace deltainfer::engine {

struct SamplingParams {
  float temperature = 0.8f;  // 0: greedy
  int top_k = 40;            // 0: no limit
  float top_p = 0.95f;       // 1: no limit
  uint64_t seed = 0;

  void validate() const;  // throws InputError naming the bad parameter
};

class Sampler {
 public:
  explicit Sampler(const SamplingParams& params);
  int32_t sample(const float* logits, int32_t vocab_size);

 private:
  SamplingParams params_;
  std::mt19937_64 rng_;
  std::vector<std::pair<float, int32_t>> candidates_;
};

int32_t argmax(const float* logits, int32_t vocab_size);

}  // namespace deltainfer::engine
