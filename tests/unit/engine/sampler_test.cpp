#include "engine/sampler.h"

#include <gtest/gtest.h>

#include <map>

#include "core/error.h"

namespace deltainfer::engine {
namespace {

TEST(Sampler, GreedyPicksTheLargestLogit) {
  const std::vector<float> logits{0.1f, 3.0f, -2.0f, 2.9f};
  Sampler sampler(SamplingParams{0.0f, 40, 0.95f, 1});
  EXPECT_EQ(sampler.sample(logits.data(), 4), 1);
}

TEST(Sampler, SameSeedSameTokens) {
  std::vector<float> logits(100);
  for (size_t i = 0; i < logits.size(); ++i) logits[i] = static_cast<float>(i % 7) * 0.3f;
  Sampler a(SamplingParams{1.0f, 0, 1.0f, 42});
  Sampler b(SamplingParams{1.0f, 0, 1.0f, 42});
  for (int i = 0; i < 50; ++i) EXPECT_EQ(a.sample(logits.data(), 100), b.sample(logits.data(), 100));
}

// How often each token comes out of `draws` samples.
std::map<int32_t, int> draw_counts(Sampler& sampler, const std::vector<float>& logits, int draws) {
  std::map<int32_t, int> seen;
  for (int i = 0; i < draws; ++i) ++seen[sampler.sample(logits.data(), static_cast<int32_t>(logits.size()))];
  return seen;
}

TEST(Sampler, TopKRestrictsToTheKLargest) {
  const std::vector<float> logits{5.0f, 4.0f, 3.0f, 2.0f, 1.0f};
  Sampler sampler(SamplingParams{10.0f, 2, 1.0f, 7});
  for (int i = 0; i < 200; ++i) EXPECT_LT(sampler.sample(logits.data(), 5), 2);
}

TEST(Sampler, TopKKeepsEveryTokenTiedWithTheKth) {
  // k = 2: the second largest logit (4.0) is shared by tokens 1, 3 and 4, so all three stay.
  const std::vector<float> logits{5.0f, 4.0f, 3.0f, 4.0f, 4.0f};
  Sampler sampler(SamplingParams{10.0f, 2, 1.0f, 11});
  std::map<int32_t, int> seen = draw_counts(sampler, logits, 400);
  EXPECT_EQ(seen.count(2), 0u);
  for (int32_t token : {0, 1, 3, 4}) EXPECT_GT(seen[token], 0) << "token " << token;
}

TEST(Sampler, TopPKeepsTokensTiedWithTheNucleusBoundary) {
  // Token 0 alone holds ~0.35 < 0.5; the nucleus takes one of the tied tokens 1-3 and so all.
  const std::vector<float> logits{1.0f, 0.5f, 0.5f, 0.5f, -5.0f};
  Sampler sampler(SamplingParams{1.0f, 0, 0.5f, 5});
  std::map<int32_t, int> seen = draw_counts(sampler, logits, 400);
  EXPECT_EQ(seen.count(4), 0u);
  for (int32_t token : {0, 1, 2, 3}) EXPECT_GT(seen[token], 0) << "token " << token;
}

TEST(Sampler, TopPKeepsTheSmallestNucleus) {
  // Probabilities at temperature 1: token 0 holds ~0.88 of the mass, so top-p 0.5 keeps it alone.
  const std::vector<float> logits{4.0f, 1.0f, 1.0f, 1.0f, 0.0f};
  Sampler sampler(SamplingParams{1.0f, 0, 0.5f, 3});
  for (int i = 0; i < 100; ++i) EXPECT_EQ(sampler.sample(logits.data(), 5), 0);
}

TEST(Sampler, FrequenciesFollowTheSoftmax) {
  const std::vector<float> logits{0.0f, std::log(3.0f)};  // p = 0.25, 0.75
  Sampler sampler(SamplingParams{1.0f, 0, 1.0f, 11});
  int ones = 0;
  const int draws = 20000;
  for (int i = 0; i < draws; ++i) ones += sampler.sample(logits.data(), 2);
  EXPECT_NEAR(static_cast<double>(ones) / draws, 0.75, 0.02);
}

TEST(Sampler, RejectsBadParameters) {
  EXPECT_THROW(Sampler(SamplingParams{-1.0f, 40, 0.9f, 0}), InputError);
  EXPECT_THROW(Sampler(SamplingParams{1.0f, -3, 0.9f, 0}), InputError);
  EXPECT_THROW(Sampler(SamplingParams{1.0f, 40, 0.0f, 0}), InputError);
  EXPECT_THROW(Sampler(SamplingParams{1.0f, 40, 1.5f, 0}), InputError);
}

}  // namespace
}  // namespace deltainfer::engine
