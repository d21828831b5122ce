// SmolLM2's tokenizer from the GGUF against HF `tokenizers` (scripts/gen-tokenizer-fixtures builds
// the HF reference from the same vocabulary with SmolLM2's tokenizer.json pipeline).
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"
#include "unit/tokenizer/tokenizer_fixture.h"

namespace deltainfer::tokenizer {
namespace {

const std::string kModel = std::string(DELTAINFER_SOURCE_DIR) + "/models/SmolLM2-135M-Instruct.Q4_1.gguf";

class SmolLM2Tokenizer : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(kModel)) GTEST_SKIP() << "model absent: " << kModel << " (scripts/fetch-model)";
    if (!tok_) tok_ = std::make_unique<Tokenizer>(Tokenizer::load(kModel));
  }
  static std::unique_ptr<Tokenizer> tok_;
};
std::unique_ptr<Tokenizer> SmolLM2Tokenizer::tok_;

TEST_F(SmolLM2Tokenizer, IdsMatchHfAndDecodeRestoresTheText) {
  const nlohmann::json cases = test::read_tokenizer_fixture("smollm2_cases.json").at("cases");
  ASSERT_GE(cases.size(), 200u);
  size_t roundtrips = 0;
  for (const auto& c : cases) {
    const std::string text = c.at("text").get<std::string>();
    const std::vector<int32_t> ids = tok_->encode(text);
    EXPECT_EQ(ids, c.at("ids").get<std::vector<int32_t>>()) << "text: " << text;
    // HF drops the bytes SmolLM2's vocabulary lacks (e.g. \x04); the fixture says where it does.
    if (c.at("roundtrip").get<bool>()) {
      EXPECT_EQ(tok_->decode(ids), text);
      ++roundtrips;
    }
  }
  EXPECT_GE(roundtrips, cases.size() - 5);
}

TEST_F(SmolLM2Tokenizer, ChatTemplateRendersAndEncodesLikeHf) {
  EXPECT_EQ(tok_->chat_format(), ChatFormat::ChatML);
  EXPECT_EQ(tok_->default_system_prompt(), "You are a helpful AI assistant named SmolLM, trained by Hugging Face");
  const nlohmann::json fixture = test::read_tokenizer_fixture("smollm2_cases.json");
  for (const auto& c : fixture.at("chat")) {
    std::vector<ChatMessage> messages;
    for (const auto& m : c.at("messages")) messages.push_back({m.at("role"), m.at("content")});
    const std::string text = tok_->apply_chat_template(messages, c.at("add_generation_prompt").get<bool>());
    EXPECT_EQ(text, c.at("text").get<std::string>());
    EXPECT_EQ(tok_->encode(text), c.at("ids").get<std::vector<int32_t>>()) << text;
  }
}

TEST_F(SmolLM2Tokenizer, MetadataFromTheGguf) {
  EXPECT_EQ(tok_->vocab_size(), 49152);
  EXPECT_EQ(tok_->bos_id(), 1);
  EXPECT_EQ(tok_->eos_id(), 2);
  EXPECT_FALSE(tok_->add_bos());
  EXPECT_EQ(tok_->stop_ids(), (std::vector<int32_t>{2, 0}));  // <|im_end|>, <|endoftext|>
  EXPECT_EQ(tok_->find_token("<|im_start|>"), 1);
  EXPECT_EQ(tok_->find_token("Ġthe"), tok_->encode(" the").at(0));
  EXPECT_EQ(tok_->token_bytes(*tok_->find_token("Ġthe")), " the");
}

TEST_F(SmolLM2Tokenizer, EncodesAHundredThousandTokensWellUnderASecond) {
  const std::string paragraph =
      "The history of natural language processing generally started in the 1950s, although work can be found from "
      "earlier periods. In 1950, Alan Turing published an article titled \"Computing Machinery and Intelligence\" "
      "which proposed what is now called the Turing test as a criterion of intelligence. It's a test they'd all "
      "heard of, and we've seen it cited in countless papers since then.\n\n";
  std::string text;
  while (text.size() < 520000) text += paragraph;
  const auto start = std::chrono::steady_clock::now();
  const std::vector<int32_t> ids = tok_->encode(text);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cout << "encoded " << ids.size() << " tokens (" << text.size() << " bytes) in " << seconds << " s\n";
  EXPECT_GE(ids.size(), 100000u);
  EXPECT_LT(seconds, 1.0);
  EXPECT_EQ(tok_->decode(ids), text);
}

}  // namespace
}  // namespace deltainfer::tokenizer
