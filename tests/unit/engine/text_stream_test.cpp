#include "engine/text_stream.h"

#include <gtest/gtest.h>

namespace deltainfer::engine {
namespace {

TEST(TextStream, ReleasesOnlyCompleteUtf8) {
  TextStream stream({});
  const std::string euro = "\xE2\x82\xAC";  // €
  EXPECT_EQ(stream.push(euro.substr(0, 1)), "");
  EXPECT_EQ(stream.push(euro.substr(1, 1)), "");
  EXPECT_EQ(stream.push(euro.substr(2) + "a"), euro + "a");
}

TEST(TextStream, StopsAtAStopStringSplitAcrossTokens) {
  TextStream stream({"<|end|>"});
  std::string shown;
  for (const char* piece : {"Hello", " wor", "ld<|e", "nd|> tail"}) shown += stream.push(piece);
  EXPECT_TRUE(stream.stopped());
  EXPECT_EQ(shown, "Hello world");
  EXPECT_EQ(stream.text(), "Hello world");
  EXPECT_EQ(stream.flush(), "");
}

TEST(TextStream, HeldBackPrefixIsReleasedWhenItDoesNotComplete) {
  TextStream stream({"STOP"});
  EXPECT_EQ(stream.push("ab ST"), "ab ");
  EXPECT_EQ(stream.push("OOL"), "STOOL");
  EXPECT_FALSE(stream.stopped());
  EXPECT_EQ(stream.push("S"), "");
  EXPECT_EQ(stream.flush(), "S");
  EXPECT_EQ(stream.text(), "ab STOOLS");
}

TEST(CompleteUtf8Prefix, HandlesEveryLength) {
  EXPECT_EQ(complete_utf8_prefix("abc"), 3u);
  EXPECT_EQ(complete_utf8_prefix("a\xC3"), 1u);
  EXPECT_EQ(complete_utf8_prefix("a\xC3\xA9"), 3u);
  EXPECT_EQ(complete_utf8_prefix("\xF0\x9F\x98"), 0u);
  EXPECT_EQ(complete_utf8_prefix("\xF0\x9F\x98\x80"), 4u);
  EXPECT_EQ(complete_utf8_prefix(""), 0u);
}

}  // namespace
}  // namespace deltainfer::engine
