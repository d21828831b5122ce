// The CPU smoke run of the evaluation harness on the real model: 2 tasks × 1 length (1K tokens)
// × 3 samples, dense, through the library and through `deltainfer eval --json`.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "engine/engine.h"
#include "eval/chat_prompt.h"
#include "eval/filler_corpus.h"
#include "eval/runner.h"
#include "eval_test_support.h"

namespace deltainfer::eval {
namespace {

const std::string kFiller = DELTAINFER_SOURCE_DIR "/data/filler";

TEST(EvalSmoke, DenseFindsThePasskeyAndTheNeedleAt1K) {
  DELTAINFER_REQUIRE_SMOLLM2();
  EvalPlan plan;
  plan.tasks = {TaskKind::Passkey, TaskKind::NiahSingle};
  plan.lengths = {1024};
  plan.samples = 3;
  plan.methods = parse_method_specs("dense");
  const EvalReport report = run_eval(plan, FillerCorpus::load(kFiller), kFiller, testing::smollm2_opener());
  ASSERT_EQ(report.samples.size(), 6u);
  for (const SampleOutcome& s : report.samples) {
    EXPECT_LE(s.prompt_tokens, 1024 - answer_token_budget(parse_task(s.task)));
    EXPECT_GT(s.prompt_tokens, 900) << "the haystack should fill the target";
    EXPECT_GT(s.generated_tokens, 0);
  }
  // SmolLM2-135M-Instruct retrieves a single number from 1K tokens of prose; a regression in the
  // prompt (template, answer prefix, tokenization) or the engine shows up here first.
  double total = 0;
  for (const CellSummary& cell : summarize(report)) total += cell.accuracy;
  EXPECT_GE(total / 2, 60.0) << markdown_tables(report);
}

TEST(EvalSmoke, LongPplSeparatesDenseFromAShortWindow) {
  DELTAINFER_REQUIRE_SMOLLM2();
  EvalPlan plan;
  plan.lengths = {768};
  plan.methods = parse_method_specs("dense;streaming:window=32,sink=4");
  plan.perplexity = true;
  plan.perplexity_texts = 1;
  plan.decode_tail = 16;
  const EvalReport report = run_eval(plan, FillerCorpus::load(kFiller), kFiller, testing::smollm2_opener());
  ASSERT_EQ(report.perplexity.size(), 2u);
  const PerplexityOutcome& dense = report.perplexity[0];
  const PerplexityOutcome& streaming = report.perplexity[1];
  EXPECT_GT(dense.key_tokens, 0) << "K = 96 should leave some tokens that need the distant context";
  EXPECT_EQ(dense.scored_tokens, 767);
  // Real prose: a 135M model lands in the tens; a broken logit row gives thousands.
  EXPECT_LT(dense.ppl, 100.0);
  EXPECT_LT(dense.ppl, streaming.ppl);
  EXPECT_LT(2.0 * dense.longppl, streaming.longppl) << markdown_tables(report);
}

TEST(EvalSmoke, PasskeyPromptFitsTheTargetInModelTokens) {
  DELTAINFER_REQUIRE_SMOLLM2();
  const tokenizer::Tokenizer tokenizer = tokenizer::Tokenizer::load(testing::smollm2_path());
  const TaskPrompt p = make_passkey_prompt(17, 2000, chat_token_counter(tokenizer));
  const auto tokens = static_cast<int64_t>(encode_task_prompt(tokenizer, p.user, p.answer_prefix).size());
  EXPECT_EQ(tokens, p.prompt_tokens);
  EXPECT_LE(tokens, 2000);
  EXPECT_GT(tokens, 1900);
}

TEST(EvalSmoke, CommandWritesJsonAndPrintsTheTable) {
  DELTAINFER_REQUIRE_SMOLLM2();
  const std::string json_path = ::testing::TempDir() + "eval_smoke.json";
  const std::string command = std::string(DELTAINFER_BINARY) + " eval --model " + testing::smollm2_path() +
                              " --tasks passkey --lengths 512 --samples 1 --methods 'dense;sliding:window=64,sink=4'"
                              " --filler " + kFiller + " --json " + json_path + " > " + json_path + ".md 2>&1";
  ASSERT_EQ(std::system(command.c_str()), 0) << command;
  std::ifstream in(json_path);
  const nlohmann::json j = nlohmann::json::parse(in);
  ASSERT_EQ(j.at("cells").size(), 2u);
  EXPECT_EQ(j.at("methods"), nlohmann::json({"dense", "sliding:window=64,sink=4"}));
  EXPECT_EQ(j.at("samples").size(), 2u);
  std::ifstream md(json_path + ".md");
  const std::string table((std::istreambuf_iterator<char>(md)), std::istreambuf_iterator<char>());
  EXPECT_NE(table.find("| passkey | 512 |"), std::string::npos) << table;
}

}  // namespace
}  // namespace deltainfer::eval
