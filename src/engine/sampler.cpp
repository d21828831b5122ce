#include "engine/sampler.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace deltainfer::engine {

void SamplingParams::validate() const {
  if (!(temperature >= 0.0f) || !std::isfinite(temperature)) {
    throw_input_error("temperature must be a finite number >= 0 (got {})", temperature);
  }
  if (top_k < 0) throw_input_error("top-k must be >= 0 (got {})", top_k);
  if (!(top_p > 0.0f && top_p <= 1.0f)) throw_input_error("top-p must be in (0, 1] (got {})", top_p);
}

int32_t argmax(const float* logits, int32_t vocab_size) {
  return static_cast<int32_t>(std::max_element(logits, logits + vocab_size) - logits);
}

Sampler::Sampler(const SamplingParams& params) : params_(params), rng_(params.seed) { params_.validate(); }

int32_t Sampler::sample(const float* logits, int32_t vocab_size) {
  if (params_.temperature == 0.0f) return argmax(logits, vocab_size);

  candidates_.resize(static_cast<size_t>(vocab_size));
  for (int32_t i = 0; i < vocab_size; ++i) candidates_[static_cast<size_t>(i)] = {logits[i], i};
  // Highest logits first; ties toward the lower token id so the order is deterministic.
  auto higher = [](const auto& a, const auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); };
  size_t keep = candidates_.size();
  if (params_.top_k > 0 && static_cast<size_t>(params_.top_k) < keep) {
    keep = static_cast<size_t>(params_.top_k);
    std::partial_sort(candidates_.begin(), candidates_.begin() + static_cast<std::ptrdiff_t>(keep), candidates_.end(), higher);
    // Tokens tied with the k-th logit are all kept: the set is a threshold on the logit, the same
    // on every backend (the GPU sampler selects by threshold, not by position).
    const float kth = candidates_[keep - 1].first;
    const auto tied_end = std::partition(candidates_.begin() + static_cast<std::ptrdiff_t>(keep), candidates_.end(),
                                         [kth](const auto& c) { return c.first == kth; });
    keep = static_cast<size_t>(tied_end - candidates_.begin());
  } else {
    std::sort(candidates_.begin(), candidates_.end(), higher);
  }
  candidates_.resize(keep);

  const float max_logit = candidates_.front().first;
  std::vector<double> weights(keep);
  double total = 0.0;
  for (size_t i = 0; i < keep; ++i) {
    weights[i] = std::exp(static_cast<double>(candidates_[i].first - max_logit) / params_.temperature);
    total += weights[i];
  }
  if (params_.top_p < 1.0f) {
    double cumulative = 0.0;
    size_t nucleus = 0;
    while (nucleus < keep) {
      cumulative += weights[nucleus++] / total;
      if (cumulative >= params_.top_p) break;
    }
    // Ties with the last token of the nucleus stay in it, as with top-k.
    while (nucleus < keep && candidates_[nucleus].first == candidates_[nucleus - 1].first) ++nucleus;
    weights.resize(nucleus);
  }
  std::discrete_distribution<size_t> pick(weights.begin(), weights.end());
  return candidates_[pick(rng_)].second;
}

}  // namespace deltainfer::engine
