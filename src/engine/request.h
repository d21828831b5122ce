#pragma once
// What a client asks the Scheduler for and what it gets back: one completion of a tokenized
// prompt under its own sampling, stop conditions and attention method.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "attention/attention_config.h"
#include "engine/generator.h"

namespace deltainfer::engine {

using RequestId = uint64_t;

// engine::generate's request (prompt, max_tokens, sampling, stop conditions) plus the method.
struct CompletionRequest : GenerationRequest {
  // The sequence's attention method; nullopt: the scheduler's default.
  std::optional<attention::AttentionConfig> method;
};

// Stopped: EOS or a stop string. Length: max_tokens or a full context. Cancelled: the client went
// away (or the scheduler shut down before the request ran). Failed: the engine refused the work.
enum class FinishReason { Stopped, Length, Cancelled, Failed };
const char* finish_reason_name(FinishReason reason);

struct CompletionOutcome {
  FinishReason finish = FinishReason::Length;
  std::string text;              // released text (stop string and what follows it excluded)
  std::vector<int32_t> tokens;   // generated ids (the EOS token excluded)
  int64_t prompt_tokens = 0;
  std::string error;             // Failed: why
  double queue_seconds = 0.0;    // from submit to the first forward pass that ran its prompt
  double first_token_seconds = 0.0;  // from submit to the first generated token (0: none)
  double decode_seconds = 0.0;   // from the first generated token to the last
};

// Both run on the scheduler's thread; they must not block for long or call back into it, except
// Scheduler::cancel, which is safe from anywhere.
struct CompletionCallbacks {
  std::function<void(std::string_view text)> on_text;  // each piece of final text, in order
  std::function<void(const CompletionOutcome&)> on_done;  // exactly once per accepted request
};

}  // namespace deltainfer::engine
