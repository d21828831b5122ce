#pragma once
// BatchPlan: one forward pass over any mix of prefill chunks and decode steps of different
// sequences. Each entry runs its tokens at the next positions of its sequence (causal over that
// sequence's own KV pages only) under the sequence's own attention method, and appends their keys
// and values. Rows of all entries share the GEMMs of the pass; attention is per sequence.
#include <cstdint>
#include <vector>

namespace deltainfer::runtime {

using SequenceId = int64_t;

// What an entry hands back per row: nothing, the last row's logits, every row's logits, or every
// row's negative log-likelihood of a target token (TokenNlls: one double per row instead of vocab
// floats, so a backend that computes logits on a device reduces them there; see BatchEntry).
enum class LogitsFor { None, LastToken, AllTokens, TokenNlls };

// A TokenNlls target meaning "this row is not scored" (its NLL comes back as NaN): the last row of
// a text, whose next token is not known.
inline constexpr int32_t kNoTarget = -1;

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

struct BatchEntry {
  SequenceId sequence = 0;
  const int32_t* tokens = nullptr;
  int64_t n_tokens = 0;
  // A decode step: one token after the sequence's prompt (the decode policy runs). Otherwise a
  // chunk of the prompt (the prefill policy runs).
  bool decode = false;
  // Prefill only: one past the last position of the whole prompt this chunk belongs to, where Δ's
  // dense tail ends; 0 means this chunk ends the prompt.
  int64_t prompt_end = 0;
  LogitsFor logits = LogitsFor::None;
  float* logits_out = nullptr;  // LastToken, AllTokens: vocab floats per requested row (1 or n_tokens rows)
  // TokenNlls: targets[i] (n_tokens of them, each in [0, vocab) or kNoTarget) is the token that
  // follows row i, and nlls_out[i] = −log softmax(logits of row i)[targets[i]], from the same
  // logits AllTokens would give (NaN for kNoTarget). Doubles, as eval's sums are: a backend that
  // has the logits on the host returns runtime::negative_log_likelihood's value unrounded.
  const int32_t* targets = nullptr;
  double* nlls_out = nullptr;
  // Backends that choose tokens on their device (Transformer::samples_on_device()): when set, the
  // token that follows the entry's last row under *sampling is written to *sampled, and no logits
  // cross to the host. Other backends refuse such an entry.
  const DeviceSampling* sampling = nullptr;
  int32_t* sampled = nullptr;
};

// Rows of logits the entry asks for: 1 (LastToken), n_tokens (AllTokens), else 0 (TokenNlls asks
// for NLLs, not logits).
inline int64_t logit_rows(const BatchEntry& entry) {
  if (entry.logits == LogitsFor::AllTokens) return entry.n_tokens;
  return entry.logits == LogitsFor::LastToken ? 1 : 0;
}

// A chunk of a prompt (prompt_end as in BatchEntry) and a decode step, asking for the last
// token's logits when `logits` is not null.
inline BatchEntry prefill_entry(SequenceId sequence, const int32_t* tokens, int64_t n_tokens, int64_t prompt_end,
                                float* logits = nullptr) {
  BatchEntry entry;
  entry.sequence = sequence;
  entry.tokens = tokens;
  entry.n_tokens = n_tokens;
  entry.prompt_end = prompt_end;
  entry.logits = logits != nullptr ? LogitsFor::LastToken : LogitsFor::None;
  entry.logits_out = logits;
  return entry;
}

inline BatchEntry decode_entry(SequenceId sequence, const int32_t* token, float* logits = nullptr) {
  BatchEntry entry = prefill_entry(sequence, token, 1, 0, logits);
  entry.decode = true;
  return entry;
}

struct BatchPlan {
  std::vector<BatchEntry> entries;

  int64_t total_tokens() const {
    int64_t total = 0;
    for (const BatchEntry& entry : entries) total += entry.n_tokens;
    return total;
  }
};

}  // namespace deltainfer::runtime
