#include "eval/perplexity.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"

namespace deltainfer::eval {
namespace {

// Feeds tokens[begin, end) in one forward call and scores each fed token's successor that lies in
// [score_from, tokens.size()), writing nlls[j - 1] for j = i + 1. The backend reduces each row's
// logits to the successor's NLL itself (LogitsFor::TokenNlls), so no logits reach the host.
void score_chunk(runtime::Transformer& model, const std::vector<int32_t>& tokens, size_t begin, size_t end,
                 size_t score_from, std::vector<double>& nlls) {
  const size_t n = end - begin;
  std::vector<int32_t> targets(n, runtime::kNoTarget);
  for (size_t i = begin; i < end; ++i) {
    const size_t next = i + 1;
    if (next >= score_from && next < tokens.size()) targets[i - begin] = tokens[next];
  }
  std::vector<double> chunk_nlls(n);
  model.forward_token_nlls(tokens.data() + begin, static_cast<int64_t>(n), targets.data(), chunk_nlls.data());
  for (size_t i = begin; i < end; ++i) {
    if (targets[i - begin] != runtime::kNoTarget) nlls[i] = chunk_nlls[i - begin];
  }
}

}  // namespace

std::vector<double> token_nlls(runtime::Transformer& model, const std::vector<int32_t>& tokens, int64_t chunk,
                               int64_t decode_tail) {
  if (tokens.size() < 2) throw_input_error("perplexity needs at least 2 tokens (got {})", tokens.size());
  if (static_cast<int64_t>(tokens.size()) > model.capacity()) {
    throw_input_error("perplexity text of {} tokens exceeds the context of {}", tokens.size(), model.capacity());
  }
  const size_t n = tokens.size();
  const size_t tail = static_cast<size_t>(std::clamp<int64_t>(decode_tail, 0, static_cast<int64_t>(n) - 1));
  const size_t prefill = n - tail;
  const auto step = static_cast<size_t>(std::max<int64_t>(chunk, 1));
  std::vector<double> nlls(n - 1, 0.0);
  model.truncate(0);
  for (size_t begin = 0; begin < prefill; begin += step) {
    score_chunk(model, tokens, begin, std::min(prefill, begin + step), 1, nlls);
  }
  for (size_t i = prefill; i < n; ++i) score_chunk(model, tokens, i, i + 1, 1, nlls);
  return nlls;
}

std::vector<double> short_context_nlls(runtime::Transformer& model, const std::vector<int32_t>& tokens,
                                       int64_t short_context, int64_t stride) {
  if (tokens.size() < 2) throw_input_error("perplexity needs at least 2 tokens (got {})", tokens.size());
  if (short_context < 1 || stride < 1) throw_input_error("LongPPL: short context and stride must be >= 1");
  const size_t n = tokens.size();
  const auto k = static_cast<size_t>(short_context);
  const auto s = static_cast<size_t>(stride);
  std::vector<double> nlls(n - 1, 0.0);
  // Window w feeds tokens [start - k, start + s) and scores the successors in [start + 1, ...):
  // the first window (start = 0) scores everything up to s with full context.
  for (size_t start = 0; start + 1 < n; start += s) {
    const size_t begin = start > k ? start - k : 0;
    const size_t end = std::min(n, start + s);
    model.truncate(0);
    score_chunk(model, tokens, begin, end, start == 0 ? 1 : start + 1, nlls);
  }
  model.truncate(0);
  return nlls;
}

std::vector<int64_t> select_key_tokens(const std::vector<double>& full_nlls, const std::vector<double>& short_nlls,
                                       const LongPplSelection& selection) {
  if (full_nlls.size() != short_nlls.size()) {
    throw_error("select_key_tokens: {} full-context scores but {} short-context ones", full_nlls.size(),
                short_nlls.size());
  }
  std::vector<int64_t> keys;
  for (size_t i = 0; i < full_nlls.size(); ++i) {
    const double lcl = -full_nlls[i];
    const double lsd = short_nlls[i] - full_nlls[i];
    if (lsd > selection.lsd_threshold && lcl > selection.lcl_threshold) keys.push_back(static_cast<int64_t>(i));
  }
  return keys;
}

double perplexity(const std::vector<double>& nlls) {
  if (nlls.empty()) return std::numeric_limits<double>::quiet_NaN();
  double sum = 0.0;
  for (double nll : nlls) sum += nll;
  return std::exp(sum / static_cast<double>(nlls.size()));
}

double perplexity(const std::vector<double>& nlls, const std::vector<int64_t>& positions) {
  if (positions.empty()) return std::numeric_limits<double>::quiet_NaN();
  double sum = 0.0;
  for (int64_t p : positions) sum += nlls.at(static_cast<size_t>(p));
  return std::exp(sum / static_cast<double>(positions.size()));
}

}  // namespace deltainfer::eval
