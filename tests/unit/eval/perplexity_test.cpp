#include "eval/perplexity.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/error.h"

namespace deltainfer::eval {
namespace {

// A stand-in model whose prediction of the next token depends on the whole cached context: the
// logit of token v is cos(v * (1 + hash of all tokens so far)). Any mistake in how chunks, the
// decode tail or the short-context windows feed the cache changes the scores.
class ContextHashModel : public runtime::Transformer {
 public:
  static constexpr int kVocab = 11;
  ContextHashModel() {
    config_.vocab_size = kVocab;
    config_.n_layers = 1;
  }
  const model::ModelConfig& config() const override { return config_; }
  int64_t capacity() const override { return 1000; }
  int64_t max_batch_tokens() const override { return 1000; }
  runtime::SequenceId open_sequence(const attention::AttentionConfig&) override { return 1; }
  void close_sequence(runtime::SequenceId) override {}
  int64_t sequence_length(runtime::SequenceId) const override { return static_cast<int64_t>(cache_.size()); }
  void truncate_sequence(runtime::SequenceId, int64_t n) override { cache_.resize(static_cast<size_t>(n)); }
  runtime::KvUsage kv_usage() const override { return {}; }
  runtime::SequenceId default_sequence() const override { return 0; }
  using runtime::Transformer::forward;
  void forward(const runtime::BatchPlan& plan) override {
    for (const runtime::BatchEntry& entry : plan.entries) {
      for (int64_t i = 0; i < entry.n_tokens; ++i) {
        cache_.push_back(entry.tokens[i]);
        if (entry.logits == runtime::LogitsFor::None) continue;
        if (entry.logits == runtime::LogitsFor::LastToken && i + 1 < entry.n_tokens) continue;
        if (entry.logits == runtime::LogitsFor::TokenNlls) {  // as a backend with host logits answers
          std::vector<float> row(static_cast<size_t>(config_.vocab_size));
          predict(cache_, row.data());
          runtime::token_nlls_of_rows(row.data(), 1, config_.vocab_size, entry.targets + i, entry.nlls_out + i);
          continue;
        }
        predict(cache_, entry.logits == runtime::LogitsFor::AllTokens ? entry.logits_out + i * config_.vocab_size
                                                                      : entry.logits_out);
      }
    }
  }
  // What forward() predicts after `context`: used to compute expected scores directly.
  static double nll_after(const std::vector<int32_t>& context, int32_t target) {
    std::vector<float> row(kVocab);
    predict(context, row.data());
    return negative_log_likelihood(row.data(), kVocab, target);
  }

 private:
  // The logits after `context`.
  static void predict(const std::vector<int32_t>& context, float* row) {
    for (int v = 0; v < kVocab; ++v) row[v] = static_cast<float>(std::cos(v * (1.0 + hash_of(context))));
  }
  static double hash_of(const std::vector<int32_t>& tokens) {
    double h = 0;
    for (int32_t t : tokens) h = std::fmod(h * 1.37 + t + 0.5, 7.0);
    return h;
  }
  model::ModelConfig config_;
  std::vector<int32_t> cache_;
};

std::vector<int32_t> sequence(int n) {
  std::vector<int32_t> tokens;
  for (int i = 0; i < n; ++i) tokens.push_back((i * 7 + 3) % 11);
  return tokens;
}

TEST(NegativeLogLikelihood, MatchesLogSoftmax) {
  const float logits[3] = {1.0f, 2.0f, 3.0f};
  const double log_z = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0));
  EXPECT_NEAR(negative_log_likelihood(logits, 3, 0), log_z - 1.0, 1e-12);
  EXPECT_NEAR(negative_log_likelihood(logits, 3, 2), log_z - 3.0, 1e-12);
  const float huge[2] = {1000.0f, 1000.0f};  // stable where a naive exp overflows
  EXPECT_NEAR(negative_log_likelihood(huge, 2, 1), std::log(2.0), 1e-12);
}

TEST(TokenNlls, EveryChunkingAndDecodeTailGivesTheFullContextScores) {
  const std::vector<int32_t> tokens = sequence(40);
  std::vector<double> expected;
  for (size_t i = 1; i < tokens.size(); ++i) {
    expected.push_back(ContextHashModel::nll_after({tokens.begin(), tokens.begin() + static_cast<long>(i)}, tokens[i]));
  }
  ContextHashModel model;
  for (int64_t chunk : {1, 7, 64}) {
    for (int64_t tail : {0, 5, 39}) {
      const std::vector<double> nlls = token_nlls(model, tokens, chunk, tail);
      ASSERT_EQ(nlls.size(), expected.size());
      for (size_t i = 0; i < nlls.size(); ++i) EXPECT_NEAR(nlls[i], expected[i], 1e-9) << chunk << " " << tail << " " << i;
    }
  }
}

TEST(ShortContextNlls, EachTokenSeesBetweenKPlusOneAndKPlusStrideTokens) {
  const std::vector<int32_t> tokens = sequence(50);
  const int64_t k = 8;
  const int64_t stride = 3;
  ContextHashModel model;
  const std::vector<double> nlls = short_context_nlls(model, tokens, k, stride);
  ASSERT_EQ(nlls.size(), tokens.size() - 1);
  // Window starts s = 0, 3, 6, ...: token j in (s, s + 3] sees tokens [max(0, s - k), j).
  for (size_t j = 1; j < tokens.size(); ++j) {
    const size_t s = (j - 1) / stride * stride;
    const size_t begin = s > static_cast<size_t>(k) ? s - k : 0;
    const std::vector<int32_t> context(tokens.begin() + static_cast<long>(begin), tokens.begin() + static_cast<long>(j));
    EXPECT_NEAR(nlls[j - 1], ContextHashModel::nll_after(context, tokens[j]), 1e-9) << j;
  }
}

TEST(SelectKeyTokens, NeedsBothALargeGainAndAGoodFullContextScore) {
  //                       gain 3, lcl -1 | gain 3, lcl -3 | gain 1 | gain 2.5, lcl -1.5
  const std::vector<double> full = {1.0, 3.0, 0.5, 1.5};
  const std::vector<double> shorter = {4.0, 6.0, 1.5, 4.0};
  EXPECT_EQ(select_key_tokens(full, shorter), (std::vector<int64_t>{0, 3}));
  EXPECT_THROW(select_key_tokens(full, {1.0}), Error);
}

TEST(Perplexity, IsTheExponentOfTheMeanNll) {
  EXPECT_NEAR(perplexity({std::log(2.0), std::log(8.0)}), 4.0, 1e-12);
  EXPECT_NEAR(perplexity({std::log(2.0), 5.0, std::log(8.0)}, {0, 2}), 4.0, 1e-12);
  EXPECT_TRUE(std::isnan(perplexity({1.0}, {})));
}

TEST(TokenNlls, RejectsTextsThatCannotBeScored) {
  ContextHashModel model;
  EXPECT_THROW(token_nlls(model, {1}, 8, 0), InputError);
  EXPECT_THROW(token_nlls(model, sequence(1001), 8, 0), InputError);
}

}  // namespace
}  // namespace deltainfer::eval
