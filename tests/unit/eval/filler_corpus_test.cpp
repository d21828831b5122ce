#include "eval/filler_corpus.h"

#include <gtest/gtest.h>

#include <string>

#include "core/error.h"

namespace deltainfer::eval {
namespace {

TEST(FillerCorpus, SplitsSentencesAndKeepsParagraphBreaks) {
  const FillerCorpus corpus = FillerCorpus::from_text(
      "  It was 3.5 miles\naway.  \"Really?\" she said!\n\nA new\tparagraph here.\n\n\nLast one");
  const std::vector<std::string> expected = {"It was 3.5 miles away. ", "\"Really?\" ", "she said!\n\n",
                                             "A new paragraph here.\n\n", "Last one\n\n"};
  EXPECT_EQ(corpus.sentences(), expected);
}

TEST(FillerCorpus, RunWrapsAroundTheEnd) {
  const FillerCorpus corpus = FillerCorpus::from_text("One. Two. Three.");
  const std::vector<std::string_view> run = corpus.run(2, 3);
  ASSERT_EQ(run.size(), 3u);
  EXPECT_EQ(run[0], "Three.\n\n");
  EXPECT_EQ(run[1], "One. ");
  EXPECT_EQ(run[2], "Two. ");
}

TEST(FillerCorpus, EmptyTextIsAnInputError) { EXPECT_THROW(FillerCorpus::from_text(" \n\n "), InputError); }

TEST(FillerCorpus, MissingDirectoryIsAnInputError) {
  EXPECT_THROW(FillerCorpus::load("/nonexistent/filler"), InputError);
}

TEST(FillerCorpus, ShippedTextsLoad) {
  const FillerCorpus corpus = FillerCorpus::load(DELTAINFER_SOURCE_DIR "/data/filler");
  EXPECT_GT(corpus.sentences().size(), 8000u);
  for (const std::string& sentence : corpus.sentences()) {
    ASSERT_FALSE(sentence.empty());
    ASSERT_TRUE(sentence.back() == ' ' || sentence.back() == '\n') << sentence;
    EXPECT_LT(sentence.size(), 800u) << sentence;  // long verse sentences end at a clause
  }
}

}  // namespace
}  // namespace deltainfer::eval
