// The batched eval (samples answered together, one prefill shared by the methods that prefill
// alike) gives every sample the answer and score the sequential path (one sample at a time, an
// engine per method, engine::generate) gives it.
#include <gtest/gtest.h>

#include <string>

#include "eval/method_spec.h"
#include "eval/runner.h"
#include "eval_test_support.h"

namespace deltainfer::eval {
namespace {

const std::string kFiller = DELTAINFER_SOURCE_DIR "/data/filler";

TEST(EvalBatched, SameAnswersAndScoresAsTheSequentialPath) {
  DELTAINFER_REQUIRE_SMOLLM2();
  EvalPlan plan;
  plan.tasks = {TaskKind::Passkey, TaskKind::NiahSingle};
  plan.lengths = {256, 384};
  plan.samples = 2;
  // Budgets below the prompts, so every sparse decode selects.
  plan.methods = parse_method_specs(
      "dense;delta:budget=192;quest:budget=192;tidal:budget=192;streaming:window=96,sink=16;"
      "sliding+delta:window=96,gamma=16;sliding+delta:window=96,gamma=16,decode=delta,budget=192");
  const FillerCorpus corpus = FillerCorpus::load(kFiller);

  plan.batch = 1;
  plan.share_prefill = false;
  int sequential_engines = 0;
  const EvalReport sequential = run_eval(plan, corpus, kFiller, testing::smollm2_opener(&sequential_engines));
  plan.batch = 4;
  plan.share_prefill = true;
  int batched_engines = 0;
  int checkpoints = 0;
  const EvalReport batched =
      run_eval(plan, corpus, kFiller, testing::smollm2_opener(&batched_engines), [&](const EvalReport&) { ++checkpoints; });

  // One engine per prefill group and length (dense/delta/quest/tidal; streaming; both sliding+delta).
  EXPECT_EQ(sequential_engines, 1 + 7 * 2);
  EXPECT_EQ(batched_engines, 1 + 3 * 2);
  EXPECT_EQ(checkpoints, 3 * 2);
  ASSERT_EQ(batched.samples.size(), sequential.samples.size());
  ASSERT_EQ(batched.samples.size(), 7u * 2 * 2 * 2);
  double total_score = 0;
  for (size_t i = 0; i < sequential.samples.size(); ++i) {
    const SampleOutcome& want = sequential.samples[i];
    const SampleOutcome& got = batched.samples[i];
    SCOPED_TRACE(want.method + " " + want.task + " " + std::to_string(want.length) + " #" + std::to_string(want.index));
    EXPECT_EQ(got.method, want.method);
    EXPECT_EQ(got.task, want.task);
    EXPECT_EQ(got.length, want.length);
    EXPECT_EQ(got.index, want.index);
    EXPECT_EQ(got.answer, want.answer);
    EXPECT_EQ(got.score, want.score);
    EXPECT_EQ(got.generated_tokens, want.generated_tokens);
    EXPECT_GT(got.prefill_seconds, 0.0);
    total_score += want.score;
  }
  EXPECT_GT(total_score, 0.0) << "no method answered anything: the comparison would be vacuous";
  ASSERT_EQ(batched.costs.size(), sequential.costs.size());
  for (size_t i = 0; i < sequential.costs.size(); ++i) {
    EXPECT_EQ(batched.costs[i].method, sequential.costs[i].method);
    EXPECT_EQ(batched.costs[i].description, sequential.costs[i].description);
  }
}

}  // namespace
}  // namespace deltainfer::eval
