#include "eval/scoring.h"

#include <gtest/gtest.h>

namespace deltainfer::eval {
namespace {

TEST(StringMatchAll, CountsTheShareOfExpectedValuesFound) {
  EXPECT_DOUBLE_EQ(string_match_all(" 1234567.", {"1234567"}), 1.0);
  EXPECT_DOUBLE_EQ(string_match_all("1234567 and 7654321", {"1234567", "7654321", "1111111", "2222222"}), 0.5);
  EXPECT_DOUBLE_EQ(string_match_all("none here", {"1234567"}), 0.0);
}

TEST(StringMatchAll, IgnoresCaseAndControlCharacters) {
  EXPECT_DOUBLE_EQ(string_match_all("they are: abcde, FGHIJ", {"ABCDE", "fghij"}), 1.0);
  EXPECT_DOUBLE_EQ(string_match_all("12\x01" "345", {"12345"}), 1.0);
}

TEST(StringMatchAll, NoExpectedValueScoresZero) { EXPECT_DOUBLE_EQ(string_match_all("anything", {}), 0.0); }

}  // namespace
}  // namespace deltainfer::eval
