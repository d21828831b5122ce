#include "eval/report.h"

#include <gtest/gtest.h>


namespace deltainfer::eval {
namespace {

SampleOutcome sample(const char* task, int64_t length, const char* method, double score) {
  SampleOutcome s;
  s.task = task;
  s.length = length;
  s.method = method;
  s.score = score;
  s.prompt_tokens = 100;
  s.prefill_seconds = 0.5;
  s.generated_tokens = 10;
  s.decode_seconds = 0.25;
  return s;
}

EvalReport two_methods() {
  EvalReport r;
  r.methods = {"dense", "delta:budget=25%"};
  r.lengths = {1024};
  r.tasks = {"passkey", "vt"};
  r.costs = {{"dense", 1024, "", {1.0, 1.0}, 0}, {"delta:budget=25%", 1024, "", {1.0, 0.35}, 256}};
  for (double score : {1.0, 0.0}) r.samples.push_back(sample("passkey", 1024, "dense", score));
  for (double score : {1.0, 0.6}) r.samples.push_back(sample("vt", 1024, "dense", score));
  for (double score : {1.0, 1.0}) r.samples.push_back(sample("passkey", 1024, "delta:budget=25%", score));
  return r;  // delta has no vt result: its mean is not shown
}

TEST(Report, SummarizesCells) {
  const std::vector<CellSummary> cells = summarize(two_methods());
  ASSERT_EQ(cells.size(), 3u);
  const CellSummary& vt = cells[2];
  EXPECT_EQ(vt.task, "vt");
  EXPECT_EQ(vt.samples, 2);
  EXPECT_DOUBLE_EQ(vt.accuracy, 80.0);
  EXPECT_DOUBLE_EQ(vt.prefill_tokens_per_second, 200.0);
  EXPECT_DOUBLE_EQ(vt.decode_tokens_per_second, 40.0);
}

TEST(Report, MarkdownHasOneColumnPerMethodAndTheMeanRow) {
  const std::string md = markdown_tables(two_methods());
  EXPECT_NE(md.find("| task | length | dense | delta:budget=25% |"), std::string::npos) << md;
  EXPECT_NE(md.find("| passkey | 1024 | 50.0 | 100.0 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| vt | 1024 | 80.0 | – |"), std::string::npos) << md;
  EXPECT_NE(md.find("| **mean** | 1024 | 65.0 | – |"), std::string::npos) << md;
  EXPECT_NE(md.find("| delta:budget=25% | 1024 | 100.0% | 35.0% | 200 | 40 |"), std::string::npos) << md;
}

TEST(Report, JsonKeepsEveryAnswerAndTheCosts) {
  const nlohmann::json j = to_json(two_methods());
  EXPECT_EQ(j.at("samples").size(), 6u);
  EXPECT_EQ(j.at("cells").size(), 3u);
  EXPECT_EQ(j.at("costs")[1].at("budget_tokens"), 256);
  EXPECT_DOUBLE_EQ(j.at("costs")[1].at("attended_decode").get<double>(), 0.35);
}

}  // namespace
}  // namespace deltainfer::eval
