#include "eval/chat_prompt.h"

namespace deltainfer::eval {

std::vector<int32_t> encode_task_prompt(const tokenizer::Tokenizer& tokenizer, const std::string& user,
                                        const std::string& answer_prefix) {
  const std::string text = tokenizer.apply_chat_template({{"user", user}}, /*add_generation_prompt=*/true);
  std::vector<int32_t> tokens = tokenizer.encode(text + answer_prefix, /*parse_special=*/true);
  return tokens;
}

PromptTokenCounter chat_token_counter(const tokenizer::Tokenizer& tokenizer) {
  return [&tokenizer](const std::string& user, const std::string& answer_prefix) {
    return static_cast<int64_t>(encode_task_prompt(tokenizer, user, answer_prefix).size());
  };
}

}  // namespace deltainfer::eval
