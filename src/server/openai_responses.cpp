#include "server/openai_responses.h"

#include <fmt/format.h>

#include <atomic>
#include <chrono>
#include <random>

namespace deltainfer::server {
namespace {

// Unique within a server's life and unlikely to repeat across restarts.
std::string next_id(Endpoint endpoint) {
  static const uint64_t process_salt = std::random_device{}();
  static std::atomic<uint64_t> counter{0};
  return fmt::format("{}-{:08x}{:08x}", endpoint == Endpoint::Chat ? "chatcmpl" : "cmpl",
                     static_cast<uint32_t>(process_salt), static_cast<uint32_t>(++counter));
}

nlohmann::json envelope(const ResponseHeader& header, bool chunk) {
  const bool chat = header.endpoint == Endpoint::Chat;
  return {{"id", header.id},
          {"object", chat ? (chunk ? "chat.completion.chunk" : "chat.completion") : "text_completion"},
          {"created", header.created},
          {"model", header.model},
          {"system_fingerprint", nullptr},
          {"deltainfer", {{"method", header.method}}}};
}

}  // namespace

ResponseHeader response_header(Endpoint endpoint, const std::string& model, const std::string& method) {
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  return {endpoint, next_id(endpoint), std::chrono::duration_cast<std::chrono::seconds>(now).count(), model, method};
}

const char* openai_finish_reason(engine::FinishReason reason) {
  return reason == engine::FinishReason::Stopped ? "stop" : "length";
}

nlohmann::json usage_json(const engine::CompletionOutcome& outcome) {
  const int64_t completion = static_cast<int64_t>(outcome.tokens.size());
  return {{"prompt_tokens", outcome.prompt_tokens},
          {"completion_tokens", completion},
          {"total_tokens", outcome.prompt_tokens + completion}};
}

nlohmann::json completion_json(const ResponseHeader& header, const engine::CompletionOutcome& outcome) {
  nlohmann::json body = envelope(header, false);
  nlohmann::json choice = {{"index", 0}, {"finish_reason", openai_finish_reason(outcome.finish)}, {"logprobs", nullptr}};
  if (header.endpoint == Endpoint::Chat) {
    choice["message"] = {{"role", "assistant"}, {"content", outcome.text}};
  } else {
    choice["text"] = outcome.text;
  }
  body["choices"] = nlohmann::json::array({choice});
  body["usage"] = usage_json(outcome);
  return body;
}

nlohmann::json chunk_json(const ResponseHeader& header, std::string_view text, bool first,
                          const engine::FinishReason* finish) {
  nlohmann::json body = envelope(header, true);
  nlohmann::json choice = {{"index", 0},
                           {"finish_reason", finish != nullptr ? nlohmann::json(openai_finish_reason(*finish)) : nlohmann::json()},
                           {"logprobs", nullptr}};
  if (header.endpoint == Endpoint::Chat) {
    nlohmann::json delta = nlohmann::json::object();
    if (first) delta["role"] = "assistant";
    if (!text.empty() || first) delta["content"] = std::string(text);
    choice["delta"] = delta;
  } else {
    choice["text"] = std::string(text);
  }
  body["choices"] = nlohmann::json::array({choice});
  body["usage"] = nullptr;
  return body;
}

nlohmann::json usage_chunk_json(const ResponseHeader& header, const engine::CompletionOutcome& outcome) {
  nlohmann::json body = envelope(header, true);
  body["choices"] = nlohmann::json::array();
  body["usage"] = usage_json(outcome);
  return body;
}

std::string json_text(const nlohmann::json& value) {
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string server_sent_event(const nlohmann::json& data) { return "data: " + json_text(data) + "\n\n"; }

}  // namespace deltainfer::server
