#pragma once
// The decode loop: prefill the prompt, then sample token after token until EOS, a stop string,
// max_tokens or a full context, streaming text to a callback.
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/sampler.h"
#include "runtime/transformer.h"

namespace deltainfer::tokenizer {
class Tokenizer;
}

namespace deltainfer::engine {

struct GenerationRequest {
  std::vector<int32_t> prompt;
  int64_t max_tokens = 128;
  SamplingParams sampling;
  std::vector<std::string> stop_strings;
  bool stop_at_eos = true;
};

enum class StopReason { EndOfSequence, StopString, MaxTokens, ContextFull };
const char* stop_reason_name(StopReason reason);

struct GenerationTimings {
  int64_t prompt_tokens = 0;
  double prefill_seconds = 0.0;
  int64_t generated_tokens = 0;
  double decode_seconds = 0.0;  // from the first sampled token to the last

  double prefill_tokens_per_second() const;
  double decode_tokens_per_second() const;
};

struct GenerationResult {
  std::vector<int32_t> tokens;  // generated ids (the stop token excluded)
  std::string text;
  StopReason stop_reason = StopReason::MaxTokens;
  GenerationTimings timings;
};

using TextCallback = std::function<void(std::string_view)>;

// The model's cache must be empty (cached_tokens() == 0) or hold a prefix the caller truncated to.
GenerationResult generate(runtime::Transformer& model, const tokenizer::Tokenizer& tokenizer,
                          const GenerationRequest& request, const TextCallback& on_text = {});

}  // namespace deltainfer::engine
