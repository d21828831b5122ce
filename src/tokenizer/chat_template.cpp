#include "tokenizer/chat_template.h"

#include "tokenizer/utf8.h"

namespace deltainfer::tokenizer {

const char* chat_format_name(ChatFormat format) {
  return format == ChatFormat::Llama3 ? "llama3" : "chatml";
}

ChatFormat detect_chat_format(std::string_view jinja_template) {
  return jinja_template.find("<|start_header_id|>") != std::string_view::npos ? ChatFormat::Llama3
                                                                                : ChatFormat::ChatML;
}

std::optional<std::string> default_system_prompt(std::string_view jinja_template) {
  static constexpr std::string_view kOpen = "<|im_start|>system";
  static constexpr std::string_view kClose = "<|im_end|>";
  for (size_t at = jinja_template.find(kOpen); at != std::string_view::npos;
       at = jinja_template.find(kOpen, at + 1)) {
    std::string_view rest = jinja_template.substr(at + kOpen.size());
    // The newline is either a real one or the two characters \n inside a Jinja string literal.
    const bool escaped = rest.substr(0, 2) == "\\n";
    if (!escaped && rest.substr(0, 1) != "\n") continue;
    rest.remove_prefix(escaped ? 2 : 1);
    const size_t close = rest.find(kClose);
    if (close == std::string_view::npos) continue;
    const std::string_view literal = rest.substr(0, close);
    // A default is a plain literal; "'<|im_start|>system\n' + messages[0]['content']" is not.
    if (literal.empty() || literal.find_first_of("'\"{}+\\") != std::string_view::npos) continue;
    return std::string(literal);
  }
  return std::nullopt;
}

namespace {

std::string render_chatml(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                          const std::optional<std::string>& default_system) {
  std::string out;
  const auto turn = [&](std::string_view role, std::string_view content) {
    out.append("<|im_start|>").append(role).append("\n").append(content).append("<|im_end|>\n");
  };
  for (size_t i = 0; i < messages.size(); ++i) {
    if (i == 0 && messages[0].role != "system" && default_system) turn("system", *default_system);
    turn(messages[i].role, messages[i].content);
  }
  if (add_generation_prompt) out.append("<|im_start|>assistant\n");
  return out;
}

std::string render_llama3(const std::vector<ChatMessage>& messages, bool add_generation_prompt) {
  std::string out = messages.empty() ? "" : "<|begin_of_text|>";  // the template prepends BOS to the first message
  for (const ChatMessage& message : messages) {
    out.append("<|start_header_id|>").append(message.role).append("<|end_header_id|>\n\n");
    out.append(trim_python_space(message.content)).append("<|eot_id|>");
  }
  if (add_generation_prompt) out.append("<|start_header_id|>assistant<|end_header_id|>\n\n");
  return out;
}

}  // namespace

std::string apply_chat_template(ChatFormat format, const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                                const std::optional<std::string>& default_system) {
  return format == ChatFormat::Llama3 ? render_llama3(messages, add_generation_prompt)
                                      : render_chatml(messages, add_generation_prompt, default_system);
}

}  // namespace deltainfer::tokenizer
