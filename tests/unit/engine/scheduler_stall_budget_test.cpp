// The stall budget on made-up pass times: passes with a prompt chunk are allowed just often
// enough that the decoding sequences' mean pass time stays within the ratio, and no more.
#include "engine/scheduler_stall_budget.h"

#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"

namespace deltainfer::engine {
namespace {

constexpr double kDecodePass = 1.0;  // seconds of a pass of decodes alone
constexpr double kMixedPass = 4.0;   // seconds of a pass that also reads a prompt chunk

struct PassLog {
  int passes = 0;
  int mixed = 0;
  double seconds = 0.0;
  double mean() const { return seconds / passes; }
};

// `passes` passes that all decode, with a prompt always waiting: each reads it when allowed.
PassLog run_with_prompt_waiting(StallBudget& budget, int passes) {
  PassLog run;
  for (int i = 0; i < passes; ++i) {
    const bool mixed = budget.allows_prompt();
    const double seconds = mixed ? kMixedPass : kDecodePass;
    budget.record(/*decoded=*/true, mixed, seconds);
    run.passes++;
    run.mixed += mixed;
    run.seconds += seconds;
  }
  return run;
}

TEST(StallBudget, NoBoundLetsEveryPassReadPrompts) {
  StallBudget budget(0.0);
  const PassLog run = run_with_prompt_waiting(budget, 100);
  EXPECT_EQ(run.mixed, 100);
}

TEST(StallBudget, MeanPassTimeOfDecodingSequencesStaysWithinTheRatio) {
  StallBudget budget(2.0);
  const PassLog run = run_with_prompt_waiting(budget, 3000);
  EXPECT_LE(run.mean(), 2.0 * kDecodePass + 0.01);
  // (ratio - 1) × decode / (mixed - decode) = 1/3 of the passes may read prompts: all of them do.
  EXPECT_NEAR(static_cast<double>(run.mixed) / run.passes, 1.0 / 3.0, 0.01);
}

TEST(StallBudget, TimeSavedWhileNoPromptWaitsIsNotSpentInABurst) {
  StallBudget budget(2.0);
  for (int i = 0; i < 100; ++i) budget.record(/*decoded=*/true, /*read_prompt=*/false, kDecodePass);
  ASSERT_TRUE(budget.allows_prompt());
  budget.record(true, true, kMixedPass);
  EXPECT_FALSE(budget.allows_prompt()) << "one pass's earning, not a hundred";
}

TEST(StallBudget, PassesThatDecodeNoOneCostNothing) {
  StallBudget budget(1.5);
  budget.record(/*decoded=*/true, /*read_prompt=*/false, kDecodePass);
  for (int i = 0; i < 10; ++i) {
    EXPECT_TRUE(budget.allows_prompt());
    budget.record(/*decoded=*/false, /*read_prompt=*/true, kMixedPass);
  }
}

TEST(StallBudget, RefusesRatiosThatCannotBound) {
  EXPECT_THROW(StallBudget(1.0), InputError);
  EXPECT_THROW(StallBudget(0.5), InputError);
  EXPECT_THROW(StallBudget(-2.0), InputError);
  EXPECT_THROW(StallBudget(std::nan("")), InputError);
}

}  // namespace
}  // namespace deltainfer::engine
