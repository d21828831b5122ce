#include "tokenizer/pre_tokenizer.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/error.h"
#include "unit/tokenizer/tokenizer_fixture.h"

namespace deltainfer::tokenizer {
namespace {

std::vector<std::string> split(const PreTokenizer& pre, const std::string& text) {
  std::vector<std::string> out;
  for (std::string_view piece : pre.split(text)) out.emplace_back(piece);
  return out;
}

// The pieces HF's pre-tokenizers produce for the same strings (Split with the Llama 3 / Qwen2
// regexes; SmolLM2's Digits + ByteLevel chain).
void expect_fixture_splits(PreTokenizerKind kind, const char* key) {
  const PreTokenizer pre(pre_tokenizer_regexes(kind), "test");
  const nlohmann::json cases = test::read_tokenizer_fixture("pre_tokenizer_splits.json");
  ASSERT_GE(cases.size(), 100u);
  for (const auto& c : cases) {
    const std::string text = c.at("text").get<std::string>();
    EXPECT_EQ(split(pre, text), c.at(key).get<std::vector<std::string>>()) << key << " text: " << text;
  }
}

TEST(PreTokenizer, Llama3MatchesHfSplit) { expect_fixture_splits(PreTokenizerKind::Llama3, "llama3"); }
TEST(PreTokenizer, Qwen2MatchesHfSplit) { expect_fixture_splits(PreTokenizerKind::Qwen2, "qwen2"); }
TEST(PreTokenizer, SmolLMMatchesHfDigitsThenByteLevel) { expect_fixture_splits(PreTokenizerKind::SmolLM, "smollm"); }

TEST(PreTokenizer, FamiliesGroupDigitsDifferently) {
  const std::string text = "abc 12345";
  EXPECT_EQ(split(PreTokenizer(pre_tokenizer_regexes(PreTokenizerKind::Gpt2), "t"), text),
            (std::vector<std::string>{"abc", " 12345"}));
  EXPECT_EQ(split(PreTokenizer(pre_tokenizer_regexes(PreTokenizerKind::SmolLM), "t"), text),
            (std::vector<std::string>{"abc", " ", "1", "2", "3", "4", "5"}));
  EXPECT_EQ(split(PreTokenizer(pre_tokenizer_regexes(PreTokenizerKind::Llama3), "t"), text),
            (std::vector<std::string>{"abc", " ", "123", "45"}));
  EXPECT_EQ(split(PreTokenizer(pre_tokenizer_regexes(PreTokenizerKind::Qwen2), "t"), text),
            (std::vector<std::string>{"abc", " ", "1", "2", "3", "4", "5"}));
}

TEST(PreTokenizer, ContractionsAreCaseInsensitiveOnlyForLlama3AndQwen2) {
  EXPECT_EQ(split(PreTokenizer(pre_tokenizer_regexes(PreTokenizerKind::Gpt2), "t"), "IT'S"),
            (std::vector<std::string>{"IT", "'", "S"}));
  EXPECT_EQ(split(PreTokenizer(pre_tokenizer_regexes(PreTokenizerKind::Llama3), "t"), "IT'S"),
            (std::vector<std::string>{"IT", "'S"}));
}

TEST(PreTokenizer, InvalidUtf8IsKeptAndPiecesConcatenateToTheInput) {
  const std::string text = std::string("ok \xff\xfe bad \xc3(\xe2\x82 end \xf0\x9f\x98") + "\x80 tail";
  for (PreTokenizerKind kind :
       {PreTokenizerKind::Gpt2, PreTokenizerKind::SmolLM, PreTokenizerKind::Llama3, PreTokenizerKind::Qwen2}) {
    std::string joined;
    for (const std::string& piece : split(PreTokenizer(pre_tokenizer_regexes(kind), "t"), text)) {
      EXPECT_FALSE(piece.empty());
      joined += piece;
    }
    EXPECT_EQ(joined, text) << pre_tokenizer_name(kind);
  }
}

TEST(PreTokenizer, BadRegexIsAnInputErrorNamingTheSource) {
  try {
    PreTokenizer pre({"(unclosed"}, "model.gguf");
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("model.gguf"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace deltainfer::tokenizer
