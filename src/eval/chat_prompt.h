#pragma once
// A task prompt as the model reads it: the user turn inside the model's chat template, then the
// start of the assistant's answer (RULER feeds the answer prefix too).
#include <cstdint>
#include <string>
#include <vector>

#include "eval/tasks.h"
#include "tokenizer/tokenizer.h"

namespace deltainfer::eval {

std::vector<int32_t> encode_task_prompt(const tokenizer::Tokenizer& tokenizer, const std::string& user,
                                        const std::string& answer_prefix);

// The PromptTokenCounter of the task generators for this tokenizer.
PromptTokenCounter chat_token_counter(const tokenizer::Tokenizer& tokenizer);

}  // namespace deltainfer::eval
