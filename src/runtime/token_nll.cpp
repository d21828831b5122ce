#include "runtime/token_nll.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>

#include "runtime/batch_plan.h"

namespace deltainfer::runtime {

double negative_log_likelihood(const float* logits, int32_t vocab_size, int32_t target) {
  float max_logit = -std::numeric_limits<float>::infinity();
  for (int32_t v = 0; v < vocab_size; ++v) max_logit = std::max(max_logit, logits[v]);
  double sum = 0.0;
  for (int32_t v = 0; v < vocab_size; ++v) sum += std::exp(static_cast<double>(logits[v] - max_logit));
  return std::log(sum) + static_cast<double>(max_logit) - static_cast<double>(logits[target]);
}

void token_nlls_of_rows(const float* logits, int64_t rows, int32_t vocab_size, const int32_t* targets, double* nlls) {
  for (int64_t r = 0; r < rows; ++r) {
    nlls[r] = targets[r] == kNoTarget
                  ? std::numeric_limits<double>::quiet_NaN()
                  : negative_log_likelihood(logits + static_cast<size_t>(r) * static_cast<size_t>(vocab_size),
                                            vocab_size, targets[r]);
  }
}

}  // namespace deltainfer::runtime
