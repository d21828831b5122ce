// Small byte-level BPE tokenizers trained by HF's BpeTrainer with the Llama 3 and Qwen2
// pre-tokenizers (scripts/gen-tokenizer-fixtures): our HF-directory loader and encoder must give
// HF's ids for every fixture string.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"
#include "unit/tokenizer/tokenizer_fixture.h"

namespace deltainfer::tokenizer {
namespace {

void expect_hf_ids(const std::string& dir) {
  const Tokenizer tok = Tokenizer::from_hf_dir(test::tokenizer_fixture_path(dir));
  const nlohmann::json cases = test::read_tokenizer_fixture(dir + "/cases.json");
  ASSERT_GE(cases.size(), 100u);
  for (const auto& c : cases) {
    const std::string text = c.at("text").get<std::string>();
    EXPECT_EQ(tok.encode(text), c.at("ids").get<std::vector<int32_t>>()) << dir << " text: " << text;
  }
}

TEST(TinyBpe, Llama3IdsMatchHf) { expect_hf_ids("tiny_llama3"); }
TEST(TinyBpe, Qwen2IdsMatchHf) { expect_hf_ids("tiny_qwen2"); }

TEST(TinyBpe, HfDirectoryMetadata) {
  const Tokenizer tok = Tokenizer::from_hf_dir(test::tokenizer_fixture_path("tiny_llama3"));
  EXPECT_TRUE(tok.spec().ignore_merges);
  EXPECT_EQ(tok.bos_id(), tok.find_token("<|begin_of_text|>"));
  EXPECT_EQ(tok.eos_id(), tok.find_token("<|eot_id|>"));
  EXPECT_TRUE(tok.add_bos());
  EXPECT_EQ(tok.vocab_size(), 420);
  const std::vector<int32_t> stops = tok.stop_ids();
  EXPECT_EQ(stops.front(), *tok.eos_id());
  EXPECT_NE(std::find(stops.begin(), stops.end(), *tok.find_token("<|im_end|>")), stops.end());
}

TEST(TinyBpe, DecodeInvertsEncodeAndSpecialTokensCanBeText) {
  const Tokenizer tok = Tokenizer::from_hf_dir(test::tokenizer_fixture_path("tiny_qwen2"));
  const std::string text = "<|im_start|>user\nI'm 42 naïve 😀<|im_end|>";
  const std::vector<int32_t> ids = tok.encode(text);
  EXPECT_EQ(ids.front(), *tok.find_token("<|im_start|>"));
  EXPECT_EQ(tok.decode(ids), text);
  const std::vector<int32_t> plain = tok.encode(text, /*parse_special=*/false);
  EXPECT_GT(plain.size(), ids.size());
  EXPECT_EQ(std::count(plain.begin(), plain.end(), *tok.find_token("<|im_start|>")), 0);
  EXPECT_EQ(tok.decode(plain), text);
}

}  // namespace
}  // namespace deltainfer::tokenizer
