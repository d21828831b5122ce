#include "runtime/transformer.h"

#include <algorithm>

#include "core/error.h"

namespace deltainfer::runtime {

void Transformer::set_sequence_method(SequenceId id, const attention::AttentionConfig& method) {
  (void)id;
  throw_input_error("this backend cannot change the attention method of a sequence (\"{}\")", attention::describe(method));
}

void Transformer::forward_in_chunks(const int32_t* tokens, int64_t n,
                                    const std::function<void(BatchEntry&, int64_t, bool)>& outputs) {
  if (n <= 0) throw_error("forward() needs at least one token");
  const SequenceId sequence = default_sequence();
  const int64_t start_length = sequence_length(sequence);
  if (start_length + n > capacity()) {
    throw_input_error("sequence of {} tokens does not fit the KV cache of {} positions", start_length + n, capacity());
  }
  const bool decode = n == 1 && start_length > 0;
  const int64_t chunk = std::max<int64_t>(1, prefill_chunk());
  for (int64_t start = 0; start < n; start += chunk) {
    BatchEntry entry = prefill_entry(sequence, tokens + start, std::min(chunk, n - start), start_length + n);
    entry.decode = decode;
    outputs(entry, start, start + entry.n_tokens == n);
    forward(BatchPlan{{entry}});
    report_prefill_progress(start + entry.n_tokens, n);
  }
}

void Transformer::forward(const int32_t* tokens, int64_t n, LogitsFor which, float* logits) {
  if (which == LogitsFor::TokenNlls) throw_error("forward(): token NLLs need targets; use forward_token_nlls()");
  const size_t vocab = static_cast<size_t>(config().vocab_size);
  forward_in_chunks(tokens, n, [&](BatchEntry& entry, int64_t start, bool last_chunk) {
    if (logits != nullptr && which == LogitsFor::AllTokens) {
      entry.logits = LogitsFor::AllTokens;
      entry.logits_out = logits + static_cast<size_t>(start) * vocab;
    } else if (logits != nullptr && which == LogitsFor::LastToken && last_chunk) {
      entry.logits = LogitsFor::LastToken;
      entry.logits_out = logits;
    }
  });
}

void Transformer::forward_token_nlls(const int32_t* tokens, int64_t n, const int32_t* targets, double* nlls) {
  forward_in_chunks(tokens, n, [&](BatchEntry& entry, int64_t start, bool) {
    entry.logits = LogitsFor::TokenNlls;
    entry.targets = targets + start;
    entry.nlls_out = nlls + start;
  });
}

int32_t Transformer::forward_and_sample(const int32_t*, int64_t, const DeviceSampling&) {
  throw_error("this backend does not sample on a device; use forward() and a host sampler");
}

}  // namespace deltainfer::runtime
