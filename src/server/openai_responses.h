#pragma once
// The JSON the OpenAI API answers with: a chat.completion / text_completion object, the chunks of
// a stream (server-sent events ending in `data: [DONE]`) and the usage object. Each also carries
// `deltainfer.method`: the attention method that ran (attention::describe).
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <string_view>

#include "engine/request.h"
#include "server/completion_params.h"

namespace deltainfer::server {

struct ResponseHeader {
  Endpoint endpoint = Endpoint::Chat;
  std::string id;       // chatcmpl-... / cmpl-...
  int64_t created = 0;  // Unix seconds
  std::string model;
  std::string method;   // attention::describe of the method that ran
};

ResponseHeader response_header(Endpoint endpoint, const std::string& model, const std::string& method);

// "stop" (EOS or a stop string) or "length" (max_tokens or a full context).
const char* openai_finish_reason(engine::FinishReason reason);
nlohmann::json usage_json(const engine::CompletionOutcome& outcome);
nlohmann::json completion_json(const ResponseHeader& header, const engine::CompletionOutcome& outcome);

// One stream chunk: `text` as the delta (chat: with the assistant role in the first chunk), and the
// finish reason in the last one.
nlohmann::json chunk_json(const ResponseHeader& header, std::string_view text, bool first,
                          const engine::FinishReason* finish);
// The extra last chunk of stream_options.include_usage: no choices, the usage.
nlohmann::json usage_chunk_json(const ResponseHeader& header, const engine::CompletionOutcome& outcome);

// The JSON text; bytes that are not UTF-8 (a completion cut inside a character, a detokenized
// id list) become U+FFFD instead of failing.
std::string json_text(const nlohmann::json& value);
// "data: <json>\n\n"
std::string server_sent_event(const nlohmann::json& data);
constexpr std::string_view kStreamEnd = "data: [DONE]\n\n";

}  // namespace deltainfer::server
