#pragma once
// Chat templates for the families we run, written out in C++ (no Jinja engine): they render
// exactly what HF's apply_chat_template renders from the models' own Jinja templates.
//   ChatML (SmolLM2, Qwen2/2.5): [<|im_start|>system\n{default}<|im_end|>\n when the first message
//     is not a system message and the template has a default] then per message
//     <|im_start|>{role}\n{content}<|im_end|>\n; generation prompt <|im_start|>assistant\n.
//   Llama 3: <|begin_of_text|> then per message
//     <|start_header_id|>{role}<|end_header_id|>\n\n{content | trim}<|eot_id|>; generation prompt
//     <|start_header_id|>assistant<|end_header_id|>\n\n.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace deltainfer::tokenizer {

enum class ChatFormat { ChatML, Llama3 };

struct ChatMessage {
  std::string role;
  std::string content;
};

const char* chat_format_name(ChatFormat format);

// From a model's Jinja chat template: "<|start_header_id|>" means Llama 3, anything else ChatML.
ChatFormat detect_chat_format(std::string_view jinja_template);

// The system prompt a ChatML template inserts when the conversation has none (SmolLM2: "You are a
// helpful AI assistant named SmolLM, trained by Hugging Face"; Qwen2.5: "You are Qwen, created by
// Alibaba Cloud. You are a helpful assistant."): the literal text of the template's
// '<|im_start|>system\n...<|im_end|>' string. nullopt when the template has none.
std::optional<std::string> default_system_prompt(std::string_view jinja_template);

// The prompt text (special tokens written out; encode it with parse_special = true). A ChatML
// conversation whose first message is not a system message starts with `default_system` when
// given; Llama 3 has no default system message and ignores it.
std::string apply_chat_template(ChatFormat format, const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                                const std::optional<std::string>& default_system = std::nullopt);

}  // namespace deltainfer::tokenizer
