#include "core/progress.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>

namespace deltainfer {
namespace {

TEST(Progress, FormatsDurations) {
  EXPECT_EQ(format_duration(12.4), "12s");
  EXPECT_EQ(format_duration(187), "3m07s");
  EXPECT_EQ(format_duration(3725), "1h02m");
}

TEST(Progress, FormatsRatesWithPrefixes) {
  EXPECT_EQ(format_rate(50, 2.0, "tokens"), "25.0 tokens/s");
  EXPECT_EQ(format_rate(123456, 1.0, "tokens"), "123.5K tokens/s");
  EXPECT_EQ(format_rate(3.5e6, 1.0, "tokens"), "3.50M tokens/s");
  EXPECT_EQ(format_rate(10, 0.0, "tokens"), "0.0 tokens/s");
}

std::string read_all(std::FILE* file) {
  std::rewind(file);
  std::string text;
  for (int c = std::fgetc(file); c != EOF; c = std::fgetc(file)) text.push_back(static_cast<char>(c));
  return text;
}

// Not a terminal: plain lines, at the first step and at each tenth, each with the rate when a unit is named.
TEST(Progress, PlainLinesPerTenthWithTheRate) {
  std::FILE* file = std::tmpfile();
  ASSERT_NE(file, nullptr);
  {
    Progress progress("prefill", 100, file, "tokens");
    for (int i = 0; i < 100; ++i) progress.advance(1, "x");
  }
  const std::string text = read_all(file);
  std::fclose(file);
  size_t lines = 0;
  for (char c : text) lines += c == '\n' ? 1 : 0;
  EXPECT_EQ(lines, 11u) << text;  // the first step, then each tenth
  EXPECT_NE(text.find("prefill: 100/100 (100%)"), std::string::npos) << text;
  EXPECT_NE(text.find("tokens/s"), std::string::npos) << text;
}

}  // namespace
}  // namespace deltainfer
