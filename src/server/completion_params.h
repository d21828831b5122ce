#pragma once
// The body of POST /v1/chat/completions and /v1/completions, read into a scheduler request:
// the prompt (chat messages through the model's chat template, or text, or token ids), sampling,
// stop strings, max_tokens, streaming and the per-request attention method. Every bad field is a
// 400 ApiError naming it; a `model` that is not the served one is a 404.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "attention/attention_config.h"
#include "engine/request.h"

namespace deltainfer::tokenizer {
class Tokenizer;
}

namespace deltainfer::server {

enum class Endpoint { Chat, Completion };

// What a request is read against: the served model and the server's defaults.
struct ServedModel {
  const tokenizer::Tokenizer* tokenizer = nullptr;
  std::string name;
  int64_t capacity = 0;  // positions of one sequence
  int n_layers = 0;
  attention::AttentionConfig default_method;
};

struct CompletionParams {
  engine::CompletionRequest request;
  attention::AttentionConfig method;  // what runs: the request's or the server's default
  bool stream = false;
  bool include_usage = false;
};

CompletionParams parse_completion(const nlohmann::json& body, Endpoint endpoint, const ServedModel& model);

// Prompt text as the CLI tokenizes it: BOS when the model wants one, special tokens parsed.
std::vector<int32_t> text_prompt(const std::string& text, const tokenizer::Tokenizer& tokenizer);
// OpenAI chat messages through the model's chat template, with the assistant's turn opened.
std::vector<int32_t> chat_prompt(const nlohmann::json& messages, const tokenizer::Tokenizer& tokenizer);

}  // namespace deltainfer::server
