#include "eval/tasks.h"

#include <gtest/gtest.h>

#include <sstream>
#include <string>

#include "core/error.h"
#include "eval/scoring.h"

namespace deltainfer::eval {
namespace {

// A stand-in for the tokenizer: one token per whitespace-separated word, plus a fixed template.
int64_t count_words(const std::string& text) {
  std::istringstream in(text);
  int64_t words = 0;
  for (std::string word; in >> word;) ++words;
  return words;
}
int64_t fake_count(const std::string& user, const std::string& answer_prefix) {
  return 10 + count_words(user) + count_words(answer_prefix);
}

const FillerCorpus& corpus() {
  static const FillerCorpus shipped = FillerCorpus::load(DELTAINFER_SOURCE_DIR "/data/filler");
  return shipped;
}

class EveryTask : public ::testing::TestWithParam<TaskKind> {};

TEST_P(EveryTask, FillsTheTargetWithoutPassingIt) {
  for (int64_t target : {500, 1000, 4000}) {
    const TaskPrompt p = make_task_prompt(GetParam(), {7, target, 0.5}, corpus(), fake_count);
    EXPECT_EQ(p.prompt_tokens, fake_count(p.user, p.answer_prefix));
    EXPECT_LE(p.prompt_tokens, target);
    // One more sentence would not fit; shipped sentences are short.
    EXPECT_GT(p.prompt_tokens, target - 100) << task_name(GetParam()) << " at " << target;
  }
}

TEST_P(EveryTask, IsAPureFunctionOfTheSeed) {
  const TaskPrompt a = make_task_prompt(GetParam(), {42, 800, -1.0}, corpus(), fake_count);
  const TaskPrompt b = make_task_prompt(GetParam(), {42, 800, -1.0}, corpus(), fake_count);
  const TaskPrompt c = make_task_prompt(GetParam(), {43, 800, -1.0}, corpus(), fake_count);
  EXPECT_EQ(a.user, b.user);
  EXPECT_EQ(a.expected, b.expected);
  EXPECT_NE(a.user, c.user);
  EXPECT_NE(a.expected, c.expected);
}

TEST_P(EveryTask, TheHaystackHoldsEveryAnswerAndTheQuestionComesLast) {
  const TaskPrompt p = make_task_prompt(GetParam(), {11, 1500, 0.3}, corpus(), fake_count);
  ASSERT_FALSE(p.expected.empty());
  for (const std::string& value : p.expected) EXPECT_NE(p.user.find(value), std::string::npos) << value;
  const std::string question = p.user.substr(p.user.rfind("\n\n") + 2);
  EXPECT_LT(question.size(), 300u) << question;
  EXPECT_EQ(string_match_all(question, p.expected), 0.0) << question;
  // The user turn alone does not answer: the answer prefix repeats none of the values (except vt,
  // whose prefix names the value it asks about, which is not an expected name).
  EXPECT_EQ(string_match_all(p.answer_prefix, p.expected), 0.0);
  EXPECT_EQ(string_match_all(p.user, p.expected), 1.0);
}

INSTANTIATE_TEST_SUITE_P(Tasks, EveryTask, ::testing::ValuesIn(all_tasks()),
                         [](const auto& param_info) { return std::string(task_name(param_info.param)); });

double relative_position(const std::string& text, const std::string& needle) {
  const size_t at = text.find(needle);
  EXPECT_NE(at, std::string::npos) << needle;
  return static_cast<double>(at) / static_cast<double>(text.size());
}

TEST(Tasks, TheFirstNeedleSitsAtTheRequestedDepth) {
  for (double depth : {0.0, 0.25, 0.5, 0.75, 1.0}) {
    const TaskPrompt p = make_task_prompt(TaskKind::NiahSingle, {5, 3000, depth}, corpus(), fake_count);
    EXPECT_DOUBLE_EQ(p.depths[0], depth);
    // Measured in characters of the whole user turn, which adds a short instruction and question.
    EXPECT_NEAR(relative_position(p.user, p.expected[0]), depth, 0.08) << depth;
  }
}

TEST(Tasks, PasskeyNeedleAndAnswer) {
  const TaskPrompt p = make_task_prompt(TaskKind::Passkey, {3, 600, 0.5}, corpus(), fake_count);
  ASSERT_EQ(p.expected.size(), 1u);
  EXPECT_EQ(p.expected[0].size(), 5u);
  EXPECT_NE(p.user.find("The pass key is " + p.expected[0] + ". Remember it."), std::string::npos);
  EXPECT_EQ(p.answer_prefix, "The pass key is");
}

TEST(Tasks, MultiKeyHasDistractorsWithOtherKeys) {
  const TaskPrompt p = make_task_prompt(TaskKind::NiahMultiKey, {9, 1000, 0.5}, corpus(), fake_count);
  ASSERT_EQ(p.expected.size(), 1u);
  size_t needles = 0;
  for (size_t at = 0; (at = p.user.find("One of the special magic numbers for ", at)) != std::string::npos; ++at) {
    ++needles;
  }
  EXPECT_EQ(needles, 4u);
}

TEST(Tasks, MultiValueAndMultiQueryExpectFourDistinctValues) {
  for (TaskKind task : {TaskKind::NiahMultiValue, TaskKind::NiahMultiQuery}) {
    const TaskPrompt p = make_task_prompt(task, {21, 1000, -1.0}, corpus(), fake_count);
    ASSERT_EQ(p.expected.size(), 4u);
    for (size_t i = 0; i < 4; ++i) {
      EXPECT_EQ(p.expected[i].size(), 7u);
      for (size_t j = 0; j < i; ++j) EXPECT_NE(p.expected[i], p.expected[j]);
    }
  }
}

TEST(Tasks, VariableChainAppearsInAssignmentOrder) {
  const TaskPrompt p = make_task_prompt(TaskKind::VariableTracking, {13, 2000, -1.0}, corpus(), fake_count);
  ASSERT_EQ(p.expected.size(), 5u);
  size_t previous = p.user.find("VAR " + p.expected[0] + " = ");
  ASSERT_NE(previous, std::string::npos);
  for (size_t i = 1; i < p.expected.size(); ++i) {
    const size_t at = p.user.find("VAR " + p.expected[i] + " = VAR " + p.expected[i - 1] + ".");
    ASSERT_NE(at, std::string::npos) << i;
    EXPECT_GT(at, previous);
    previous = at;
  }
}

TEST(Tasks, ATargetTooSmallForTheQuestionIsAnInputError) {
  EXPECT_THROW(make_task_prompt(TaskKind::NiahMultiQuery, {1, 20, -1.0}, corpus(), fake_count), InputError);
}

TEST(Tasks, ParsesNamesAndRejectsUnknownOnes) {
  for (TaskKind task : all_tasks()) EXPECT_EQ(parse_task(task_name(task)), task);
  try {
    parse_task("niah");
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("niah_multikey"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace deltainfer::eval
