#pragma once
// eval::token_nlls as it was before LogitsFor::TokenNlls: every row's logits to the host (AllTokens),
// reduced there by runtime::negative_log_likelihood. The model and GPU tests hold the TokenNlls
// path to it.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "runtime/token_nll.h"
#include "runtime/transformer.h"

namespace deltainfer::testing {

// −log p(tokens[i] | tokens[0..i)) at entry i − 1: the first n − decode_tail tokens fed in calls
// of `chunk`, the rest one at a time (decode steps). Starts the default sequence anew.
inline std::vector<double> token_nlls_from_logits(runtime::Transformer& model, const std::vector<int32_t>& tokens,
                                                  size_t chunk, size_t decode_tail) {
  const size_t n = tokens.size();
  const auto vocab = static_cast<size_t>(model.config().vocab_size);
  std::vector<double> nlls(n - 1);
  std::vector<float> logits;
  const auto feed = [&](size_t begin, size_t end) {
    logits.resize((end - begin) * vocab);
    model.forward(tokens.data() + begin, static_cast<int64_t>(end - begin), runtime::LogitsFor::AllTokens,
                  logits.data());
    for (size_t i = begin; i < end && i + 1 < n; ++i) {
      nlls[i] = runtime::negative_log_likelihood(logits.data() + (i - begin) * vocab, static_cast<int32_t>(vocab),
                                                 tokens[i + 1]);
    }
  };
  model.truncate(0);
  const size_t prefill = n - decode_tail;
  for (size_t begin = 0; begin < prefill; begin += chunk) feed(begin, std::min(prefill, begin + chunk));
  for (size_t i = prefill; i < n; ++i) feed(i, i + 1);
  return nlls;
}

}  // namespace deltainfer::testing
