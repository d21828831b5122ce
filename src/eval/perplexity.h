#pragma once
// Perplexity over long real text, and LongPPL (Fang et al., "What is Wrong with Perplexity for
// Long-context Language Modeling?", ICLR 2025): perplexity restricted to the key tokens, those
// whose prediction depends on distant context.
//
// Key-token selection, as in the paper, by a reference model (here: the same model with dense
// attention) scoring each token x_i twice:
//   LCL_i = log p(x_i | x_0..x_{i-1})                   (long-context likelihood)
//   LSD_i = LCL_i − log p(x_i | x_{i-K}..x_{i-1})        (long-short difference)
// x_i is a key token when LSD_i > α and LCL_i > β: the distant context raises its probability
// more than e^α times and the model, given it, predicts the token reasonably well. The paper's
// α = 2, β = −2 are the defaults; K (the short context) defaults to an eighth of the window, as
// the paper's 4K of 32K (at 1K tokens, K = 512 left no key token at all: 384 extra tokens of
// context seldom raise a token's probability e² times). Tokens i < K see the same
// context both ways (LSD = 0) and are never key tokens. The short-context scores come from
// windows of K + stride tokens moved by `stride`, so a token sees between K + 1 and K + stride
// tokens of context (the paper's sliding evaluation; stride defaults to K / 4).
//
// The selection is computed once, with the dense reference, and every method is then scored on
// the same positions. Every score is asked of the backend as LogitsFor::TokenNlls (one NLL per
// token), so a backend that computes logits on a device reduces them there (backend/cuda/token_nll.h)
// instead of copying every row of logits to the host.
#include <cstdint>
#include <vector>

#include "runtime/token_nll.h"
#include "runtime/transformer.h"

namespace deltainfer::eval {

// −log p(tokens[i] | tokens[0..i)) for i in [1, n): entry i − 1. The first n − decode_tail
// tokens are prefilled in chunks of `chunk`; the last decode_tail tokens are fed one at a time,
// so that decode-time attention policies (DELTA, Quest, StreamingLLM) take part. Starts a new
// sequence.
std::vector<double> token_nlls(runtime::Transformer& model, const std::vector<int32_t>& tokens, int64_t chunk,
                               int64_t decode_tail);

// −log p(tokens[i] | the K + 1 to K + stride tokens before it) for i in [1, n), as above;
// tokens i <= K + stride see their whole prefix.
std::vector<double> short_context_nlls(runtime::Transformer& model, const std::vector<int32_t>& tokens,
                                       int64_t short_context, int64_t stride);

struct LongPplSelection {
  double lsd_threshold = 2.0;  // α
  double lcl_threshold = -2.0;  // β
};

// Indices into the NLL vectors of the key tokens.
std::vector<int64_t> select_key_tokens(const std::vector<double>& full_nlls, const std::vector<double>& short_nlls,
                                       const LongPplSelection& selection = {});

// exp(mean NLL) over all entries, or over `positions` only. NaN when there is none.
double perplexity(const std::vector<double>& nlls);
double perplexity(const std::vector<double>& nlls, const std::vector<int64_t>& positions);

// −log softmax(logits)[target], computed stably (runtime/token_nll.h: the backends return it).
using runtime::negative_log_likelihood;

}  // namespace deltainfer::eval
