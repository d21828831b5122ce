#include "server/completion_params.h"

#include <fmt/format.h>

#include <random>

#include "core/error.h"
#include "server/api_error.h"
#include "server/json_fields.h"
#include "server/method_object.h"
#include "tokenizer/tokenizer.h"

namespace deltainfer::server {
namespace {

constexpr size_t kMaxStopStrings = 16;

std::string message_content(const nlohmann::json& content) {
  if (content.is_string()) return content.get<std::string>();
  if (!content.is_array()) throw bad_request("a message's content must be a string or an array of text parts", "messages", "invalid_type");
  std::string text;
  for (const nlohmann::json& part : content) {
    if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") || !part["text"].is_string()) {
      throw bad_request("only text content parts ({\"type\": \"text\", \"text\": ...}) are supported", "messages",
                        "invalid_type");
    }
    text += part["text"].get<std::string>();
  }
  return text;
}

std::vector<int32_t> prompt_of_completion(const nlohmann::json& body, const tokenizer::Tokenizer& tokenizer) {
  const auto it = body.find("prompt");
  if (it == body.end() || it->is_null()) throw bad_request("'prompt' is required", "prompt", "missing_required_parameter");
  const nlohmann::json& prompt = *it;
  if (prompt.is_string()) return text_prompt(prompt.get<std::string>(), tokenizer);
  if (prompt.is_array() && !prompt.empty() && (prompt[0].is_string() || prompt[0].is_array())) {
    if (prompt.size() != 1) throw bad_request("only one prompt per request is supported", "prompt", "unsupported");
    if (prompt[0].is_string()) return text_prompt(prompt[0].get<std::string>(), tokenizer);
    return token_ids(prompt[0], "prompt", tokenizer.vocab_size());
  }
  if (prompt.is_array()) return token_ids(prompt, "prompt", tokenizer.vocab_size());
  throw bad_request("'prompt' must be a string, an array of token ids, or an array holding one of them", "prompt",
                    "invalid_type");
}

void read_sampling(const nlohmann::json& body, const ServedModel& model, engine::SamplingParams& sampling) {
  sampling.temperature = static_cast<float>(optional_number(body, "temperature", 0.0, 2.0).value_or(1.0));
  sampling.top_p = static_cast<float>(optional_number(body, "top_p", 1e-9, 1.0).value_or(1.0));
  const int64_t top_k = optional_integer(body, "top_k", -1, model.tokenizer->vocab_size()).value_or(0);
  sampling.top_k = static_cast<int>(top_k < 0 ? 0 : top_k);  // -1: no limit (vLLM's spelling)
  const std::optional<int64_t> seed = optional_integer(body, "seed", INT64_MIN, INT64_MAX);
  sampling.seed = seed ? static_cast<uint64_t>(*seed) : std::random_device{}();
}

void refuse_unsupported(const nlohmann::json& body) {
  if (optional_integer(body, "n", 1, 1024).value_or(1) != 1) {
    throw bad_request("only n = 1 is supported", "n", "unsupported_value");
  }
  if (optional_integer(body, "best_of", 1, 1024).value_or(1) != 1) {
    throw bad_request("only best_of = 1 is supported", "best_of", "unsupported_value");
  }
  const auto logprobs = body.find("logprobs");
  if (logprobs != body.end() && !logprobs->is_null() && *logprobs != false) {
    throw bad_request("logprobs are not supported", "logprobs", "unsupported_value");
  }
}

}  // namespace

std::vector<int32_t> text_prompt(const std::string& text, const tokenizer::Tokenizer& tokenizer) {
  std::vector<int32_t> tokens;
  if (tokenizer.add_bos() && tokenizer.bos_id()) tokens.push_back(*tokenizer.bos_id());
  const std::vector<int32_t> body = tokenizer.encode(text, /*parse_special=*/true);
  tokens.insert(tokens.end(), body.begin(), body.end());
  return tokens;
}

std::vector<int32_t> chat_prompt(const nlohmann::json& messages, const tokenizer::Tokenizer& tokenizer) {
  if (!messages.is_array() || messages.empty()) {
    throw bad_request("'messages' must be a non-empty array", "messages", messages.is_array() ? "invalid_value" : "invalid_type");
  }
  std::vector<tokenizer::ChatMessage> turns;
  for (const nlohmann::json& message : messages) {
    if (!message.is_object() || !message.contains("role") || !message["role"].is_string()) {
      throw bad_request("each message must be an object with a string 'role'", "messages", "invalid_type");
    }
    std::string role = message["role"].get<std::string>();
    if (role == "developer") role = "system";
    if (role != "system" && role != "user" && role != "assistant") {
      throw bad_request(fmt::format("message role '{}' is not one of system, developer, user, assistant", role),
                        "messages", "invalid_value");
    }
    if (!message.contains("content")) throw bad_request("each message needs 'content'", "messages", "missing_required_parameter");
    turns.push_back({role, message_content(message["content"])});
  }
  return tokenizer.encode(tokenizer.apply_chat_template(turns, /*add_generation_prompt=*/true), /*parse_special=*/true);
}

CompletionParams parse_completion(const nlohmann::json& body, Endpoint endpoint, const ServedModel& model) {
  const std::optional<std::string> name = optional_string(body, "model");
  if (name && *name != model.name) {
    throw ApiError(404, fmt::format("the model '{}' does not exist; this server serves '{}'", *name, model.name),
                   "not_found_error", "model", "model_not_found");
  }
  refuse_unsupported(body);
  CompletionParams params;
  engine::CompletionRequest& request = params.request;
  const char* prompt_param = endpoint == Endpoint::Chat ? "messages" : "prompt";
  if (endpoint == Endpoint::Chat) {
    const auto messages = body.find("messages");
    if (messages == body.end()) throw bad_request("'messages' is required", "messages", "missing_required_parameter");
    request.prompt = chat_prompt(*messages, *model.tokenizer);
  } else {
    request.prompt = prompt_of_completion(body, *model.tokenizer);
  }
  const int64_t prompt_tokens = static_cast<int64_t>(request.prompt.size());
  if (prompt_tokens == 0) throw bad_request("the prompt is empty", prompt_param, "invalid_value");
  if (prompt_tokens > model.capacity) {
    throw bad_request(fmt::format("the prompt has {} tokens but the context holds {} (see --max-context)",
                                  prompt_tokens, model.capacity), prompt_param, "context_length_exceeded");
  }
  std::optional<int64_t> max_tokens = optional_integer(body, "max_completion_tokens", 1, INT64_MAX);
  if (!max_tokens) max_tokens = optional_integer(body, "max_tokens", 1, INT64_MAX);
  // OpenAI's defaults: 16 tokens for a completion; a chat answer may fill the context (its KV
  // pages are reserved for that).
  constexpr int64_t kCompletionDefaultTokens = 16;
  request.max_tokens = max_tokens.value_or(endpoint == Endpoint::Chat ? model.capacity - prompt_tokens
                                                                      : kCompletionDefaultTokens);
  read_sampling(body, model, request.sampling);
  request.stop_strings = string_or_strings(body, "stop", kMaxStopStrings);
  request.stop_at_eos = !optional_bool(body, "ignore_eos").value_or(false);

  params.stream = optional_bool(body, "stream").value_or(false);
  const auto stream_options = body.find("stream_options");
  if (stream_options != body.end() && !stream_options->is_null()) {
    if (!params.stream) throw bad_request("'stream_options' is only allowed with stream: true", "stream_options", "invalid_value");
    if (!stream_options->is_object()) throw bad_request("'stream_options' must be an object", "stream_options", "invalid_type");
    params.include_usage = optional_bool(*stream_options, "include_usage").value_or(false);
  }
  const auto method = body.find("deltainfer");
  if (method != body.end() && !method->is_null()) {
    request.method = method_from_json(*method, model.capacity, model.n_layers);
    params.method = *request.method;
  } else {
    params.method = model.default_method;
  }
  return params;
}

}  // namespace deltainfer::server
