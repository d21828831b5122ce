// runtime::negative_log_likelihood (the value of LogitsFor::TokenNlls) and its per-row form.
#include "runtime/token_nll.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "runtime/batch_plan.h"

namespace deltainfer::runtime {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

TEST(NegativeLogLikelihood, EdgeValuesFollowTheContract) {
  const float with_masked[4] = {-kInf, 0.0f, -kInf, 0.0f};  // -inf logits add nothing
  EXPECT_NEAR(negative_log_likelihood(with_masked, 4, 1), std::log(2.0), 1e-12);
  EXPECT_EQ(negative_log_likelihood(with_masked, 4, 0), std::numeric_limits<double>::infinity());
  const float all_masked[2] = {-kInf, -kInf};
  EXPECT_TRUE(std::isnan(negative_log_likelihood(all_masked, 2, 0)));
  const float far_apart[3] = {-3.0e38f, 3.0e38f, 0.0f};  // differences overflow f32 to -inf: exp 0
  EXPECT_NEAR(negative_log_likelihood(far_apart, 3, 1), 0.0, 1e-12);
  EXPECT_NEAR(negative_log_likelihood(far_apart, 3, 2), 3.0e38, 3.0e38 * 1e-7);
}

TEST(TokenNllsOfRows, IsTheFormulaPerRowAndNanWithoutATarget) {
  const int32_t vocab = 5;
  std::vector<float> logits;
  for (int i = 0; i < 3 * vocab; ++i) logits.push_back(static_cast<float>(std::sin(0.7 * i)) * 4.0f);
  const int32_t targets[3] = {4, kNoTarget, 0};
  double nlls[3] = {0, 0, 0};
  token_nlls_of_rows(logits.data(), 3, vocab, targets, nlls);
  EXPECT_EQ(nlls[0], negative_log_likelihood(logits.data(), vocab, 4));
  EXPECT_TRUE(std::isnan(nlls[1]));
  EXPECT_EQ(nlls[2], negative_log_likelihood(logits.data() + 2 * vocab, vocab, 0));
  EXPECT_NE(nlls[0], nlls[2]);
}

}  // namespace
}  // namespace deltainfer::runtime
