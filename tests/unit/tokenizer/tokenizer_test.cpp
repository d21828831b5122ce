// The tokenizer core on hand-made vocabularies, and the GGUF loader on synthetic files.
#include "tokenizer/tokenizer.h"

#include <gtest/gtest.h>

#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "io/gguf.h"
#include "tokenizer/byte_level.h"
#include "unit/io/gguf_writer.h"

namespace deltainfer::tokenizer {
namespace {

// 256 byte tokens (id = byte) then the merges' results; "<|end|>" is a special added token.
TokenizerSpec tiny_spec(const std::vector<std::pair<std::string, std::string>>& merges) {
  TokenizerSpec spec;
  spec.source = "tiny";
  for (int b = 0; b < 256; ++b) spec.vocab.push_back(byte_level_spelling(std::string(1, static_cast<char>(b))));
  for (const auto& [left, right] : merges) spec.vocab.push_back(left + right);
  spec.merges = merges;
  spec.vocab.push_back("<|end|>");
  spec.added_tokens.push_back({static_cast<int32_t>(spec.vocab.size() - 1), "<|end|>", true, false, false});
  spec.pre_tokenizer_regexes = pre_tokenizer_regexes(PreTokenizerKind::Gpt2);
  spec.eos_id = static_cast<int32_t>(spec.vocab.size() - 1);
  return spec;
}

TEST(ByteLevel, AlphabetIsABijectionOntoPrintableCodePoints) {
  for (int b = 0; b < 256; ++b) {
    const uint32_t cp = byte_to_codepoint(static_cast<uint8_t>(b));
    EXPECT_EQ(codepoint_to_byte(cp), b);
  }
  EXPECT_EQ(byte_level_spelling(" "), "Ġ");
  EXPECT_EQ(byte_level_spelling("\n"), "Ċ");
  EXPECT_EQ(token_text_to_bytes("Ġthe"), " the");
  EXPECT_EQ(token_text_to_bytes("<|im end|>"), "<|im end|>");  // a space is outside the alphabet: verbatim
}

TEST(Bpe, LowestRankFirstThenLeftmost) {
  // "aaa": the only merge is "a a" -> "aa a"; with "aa a" also known -> "aaa".
  const Tokenizer one(tiny_spec({{"a", "a"}}));
  EXPECT_EQ(one.encode("aaa"), (std::vector<int32_t>{256, 'a'}));
  const Tokenizer two(tiny_spec({{"a", "a"}, {"aa", "a"}}));
  EXPECT_EQ(two.encode("aaa"), (std::vector<int32_t>{257}));
  // Rank decides, not position: "b c" (rank 0) beats "a b" (rank 1) in "abc".
  const Tokenizer ranked(tiny_spec({{"b", "c"}, {"a", "b"}}));
  EXPECT_EQ(ranked.encode("abc"), (std::vector<int32_t>{'a', 256}));
}

TEST(Bpe, LongWordIsFastAndExact) {
  const Tokenizer tok(tiny_spec({{"a", "a"}, {"aa", "aa"}}));
  const std::string word(100001, 'a');
  const std::vector<int32_t> ids = tok.encode(word);
  ASSERT_EQ(ids.size(), 25001u);  // 25000 x "aaaa" and one "a"
  EXPECT_EQ(ids.front(), 257);
  EXPECT_EQ(ids.back(), 'a');
  EXPECT_EQ(tok.decode(ids), word);
}

TEST(Tokenizer, SpecialTokensAreMatchedOnlyWhenParsed) {
  const Tokenizer tok(tiny_spec({}));
  const int32_t end = *tok.find_token("<|end|>");
  EXPECT_EQ(tok.encode("x<|end|>y"), (std::vector<int32_t>{'x', end, 'y'}));
  EXPECT_EQ(tok.encode("x<|end|>y", false).size(), 9u);
  EXPECT_EQ(tok.encode("<|end|<|end|>"), (std::vector<int32_t>{'<', '|', 'e', 'n', 'd', '|', end}));
  EXPECT_EQ(tok.stop_ids(), std::vector<int32_t>{end});
}

TEST(Tokenizer, LongestAddedTokenWinsAndStripFlagsSwallowSpaces) {
  TokenizerSpec spec = tiny_spec({});
  spec.vocab.push_back("<|end|>x");
  spec.added_tokens.push_back({static_cast<int32_t>(spec.vocab.size() - 1), "<|end|>x", true, true, true});
  const Tokenizer tok(std::move(spec));
  const int32_t end = *tok.find_token("<|end|>");
  const int32_t endx = *tok.find_token("<|end|>x");
  EXPECT_EQ(tok.encode("<|end|>y"), (std::vector<int32_t>{end, 'y'}));
  EXPECT_EQ(tok.encode("a  <|end|>x  b"), (std::vector<int32_t>{'a', endx, 'b'}));
}

TEST(Tokenizer, InvalidUtf8IsEncodedByteByByte) {
  const Tokenizer tok(tiny_spec({}));
  const std::string text("a\xff\xc3(\xe2\x82", 6);
  const std::vector<int32_t> ids = tok.encode(text);
  EXPECT_EQ(ids, (std::vector<int32_t>{'a', 0xff, 0xc3, '(', 0xe2, 0x82}));
  EXPECT_EQ(tok.decode(ids), text);
  EXPECT_EQ(tok.token_bytes(-1), "");
  EXPECT_EQ(tok.token_bytes(tok.vocab_size()), "");
  EXPECT_EQ(tok.token_bytes(0xe2), "\xe2");
}

TEST(Tokenizer, RandomBytesRoundTripForEveryPreTokenizer) {
  const uint32_t seed = std::random_device{}();
  std::cout << "seed " << seed << "\n";
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> byte(0, 255), length(0, 64);
  for (PreTokenizerKind kind :
       {PreTokenizerKind::Gpt2, PreTokenizerKind::SmolLM, PreTokenizerKind::Llama3, PreTokenizerKind::Qwen2}) {
    TokenizerSpec spec = tiny_spec({{"a", "a"}, {"Ġ", "a"}});
    spec.pre_tokenizer_regexes = pre_tokenizer_regexes(kind);
    const Tokenizer tok(std::move(spec));
    for (int i = 0; i < 300; ++i) {
      std::string text;
      for (int n = length(rng); n > 0; --n) text.push_back(static_cast<char>(byte(rng) % 3 == 0 ? 'a' : byte(rng)));
      EXPECT_EQ(tok.decode(tok.encode(text)), text) << pre_tokenizer_name(kind) << " seed " << seed;
    }
  }
}

TEST(Tokenizer, InconsistentSpecsAreInputErrors) {
  TokenizerSpec bad_merge = tiny_spec({});
  bad_merge.merges.push_back({"a", "zz"});
  EXPECT_THROW(Tokenizer{bad_merge}, InputError);
  TokenizerSpec bad_id = tiny_spec({});
  bad_id.bos_id = 100000;
  EXPECT_THROW(Tokenizer{bad_id}, InputError);
  TokenizerSpec empty;
  empty.source = "empty";
  EXPECT_THROW(Tokenizer{empty}, InputError);
}

// A synthetic GGUF with the tiny vocabulary.
test::GgufWriter tiny_gguf(const std::string& model, const std::string& pre) {
  const TokenizerSpec spec = tiny_spec({{"a", "a"}, {"Ġ", "aa"}});
  std::vector<std::string> merges;
  for (const auto& [l, r] : spec.merges) merges.push_back(l + " " + r);
  std::vector<int32_t> types(spec.vocab.size(), 1);
  types.back() = 3;  // CONTROL
  test::GgufWriter w;
  w.str("tokenizer.ggml.model", model).str("tokenizer.ggml.pre", pre);
  w.string_array("tokenizer.ggml.tokens", spec.vocab).string_array("tokenizer.ggml.merges", merges);
  w.array("tokenizer.ggml.token_type", io::GgufType::Int32, types);
  w.u32("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(spec.vocab.size() - 1));
  w.u32("tokenizer.ggml.bos_token_id", 'B');
  w.scalar("tokenizer.ggml.add_bos_token", io::GgufType::Bool, uint8_t{1});
  w.str("tokenizer.chat_template", "{{ '<|start_header_id|>' }}");
  return w;
}

TEST(GgufLoader, ReadsVocabularyMergesSpecialTokensAndFlags) {
  const std::vector<uint8_t> image = tiny_gguf("gpt2", "smollm").bytes();
  const io::GgufFile file = io::GgufFile::parse(image.data(), image.size(), "tiny.gguf");
  const Tokenizer tok = Tokenizer::from_gguf(file);
  EXPECT_EQ(tok.vocab_size(), 259);
  EXPECT_EQ(tok.encode("x aa<|end|>12"), (std::vector<int32_t>{'x', 257, 258, '1', '2'}));
  EXPECT_EQ(tok.bos_id(), 'B');
  EXPECT_EQ(tok.eos_id(), 258);
  EXPECT_TRUE(tok.add_bos());
  EXPECT_EQ(tok.chat_format(), ChatFormat::Llama3);
}

TEST(GgufLoader, UnsupportedModelsAndPreTokenizersAreInputErrors) {
  for (const auto& [model, pre] : std::vector<std::pair<std::string, std::string>>{{"llama", "default"},
                                                                                   {"gpt2", "chameleon"}}) {
    const std::vector<uint8_t> image = tiny_gguf(model, pre).bytes();
    const io::GgufFile file = io::GgufFile::parse(image.data(), image.size(), "tiny.gguf");
    try {
      (void)Tokenizer::from_gguf(file);
      FAIL() << model << "/" << pre << " accepted";
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find("tiny.gguf"), std::string::npos) << e.what();
    }
  }
}

TEST(Loader, MissingHfDirectoryIsAnInputError) {
  EXPECT_THROW((void)Tokenizer::from_hf_dir("/nonexistent-dir"), InputError);
  EXPECT_THROW((void)Tokenizer::load("/nonexistent-file.gguf"), InputError);
}

}  // namespace
}  // namespace deltainfer::tokenizer
