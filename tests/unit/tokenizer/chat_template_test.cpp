#include "tokenizer/chat_template.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "unit/tokenizer/tokenizer_fixture.h"

namespace deltainfer::tokenizer {
namespace {

std::vector<ChatMessage> messages_of(const nlohmann::json& list) {
  std::vector<ChatMessage> messages;
  for (const auto& m : list) messages.push_back({m.at("role").get<std::string>(), m.at("content").get<std::string>()});
  return messages;
}

// Conversations rendered by HF apply_chat_template from each family's real Jinja template.
void expect_hf_rendering(const char* family, ChatFormat want_format) {
  const nlohmann::json fixture = test::read_tokenizer_fixture("chat_templates.json").at(family);
  const std::string jinja = fixture.at("template").get<std::string>();
  ASSERT_EQ(detect_chat_format(jinja), want_format);
  const std::optional<std::string> system = default_system_prompt(jinja);
  for (const auto& c : fixture.at("cases")) {
    const bool generation = c.at("add_generation_prompt").get<bool>();
    EXPECT_EQ(apply_chat_template(want_format, messages_of(c.at("messages")), generation, system),
              c.at("text").get<std::string>())
        << family << " " << c.at("messages").dump();
  }
}

TEST(ChatTemplate, SmolLM2MatchesHf) { expect_hf_rendering("smollm2", ChatFormat::ChatML); }
TEST(ChatTemplate, Qwen25MatchesHf) { expect_hf_rendering("qwen2.5", ChatFormat::ChatML); }
TEST(ChatTemplate, Llama3MatchesHf) { expect_hf_rendering("llama3", ChatFormat::Llama3); }

TEST(ChatTemplate, DefaultSystemPromptsOfTheFamilies) {
  const nlohmann::json fixture = test::read_tokenizer_fixture("chat_templates.json");
  EXPECT_EQ(default_system_prompt(fixture["smollm2"]["template"].get<std::string>()),
            "You are a helpful AI assistant named SmolLM, trained by Hugging Face");
  EXPECT_EQ(default_system_prompt(fixture["qwen2.5"]["template"].get<std::string>()),
            "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.");
  EXPECT_EQ(default_system_prompt(fixture["llama3"]["template"].get<std::string>()), std::nullopt);
  EXPECT_EQ(default_system_prompt(""), std::nullopt);
}

TEST(ChatTemplate, UnknownTemplateFallsBackToChatMLWithoutDefaultSystem) {
  EXPECT_EQ(detect_chat_format(""), ChatFormat::ChatML);
  EXPECT_EQ(apply_chat_template(ChatFormat::ChatML, {{"user", "hi"}}, true),
            "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
}

}  // namespace
}  // namespace deltainfer::tokenizer
