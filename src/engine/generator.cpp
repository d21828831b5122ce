#include "engine/generator.h"

#include <algorithm>
#include <chrono>

#include "core/error.h"
#include "engine/text_stream.h"
#include "tokenizer/tokenizer.h"

namespace deltainfer::engine {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace

const char* stop_reason_name(StopReason reason) {
  switch (reason) {
    case StopReason::EndOfSequence: return "eos";
    case StopReason::StopString: return "stop";
    case StopReason::MaxTokens: return "length";
    case StopReason::ContextFull: return "context";
  }
  return "unknown";
}

double GenerationTimings::prefill_tokens_per_second() const {
  return prefill_seconds > 0 ? static_cast<double>(prompt_tokens) / prefill_seconds : 0.0;
}

double GenerationTimings::decode_tokens_per_second() const {
  return decode_seconds > 0 ? static_cast<double>(generated_tokens - 1) / decode_seconds : 0.0;
}

GenerationResult generate(runtime::Transformer& model, const tokenizer::Tokenizer& tokenizer,
                          const GenerationRequest& request, const TextCallback& on_text) {
  if (request.prompt.empty()) throw_input_error("the prompt is empty (no tokens to start from)");
  if (request.max_tokens < 0) throw_input_error("max-tokens must be >= 0 (got {})", request.max_tokens);
  const int64_t context = model.capacity();
  if (model.cached_tokens() + static_cast<int64_t>(request.prompt.size()) > context) {
    throw_input_error("the prompt has {} tokens but the context holds {}", request.prompt.size(), context);
  }

  const int32_t vocab = model.config().vocab_size;
  std::vector<float> logits(static_cast<size_t>(vocab));
  std::vector<int32_t> stop_ids = tokenizer.stop_ids();
  Sampler sampler(request.sampling);
  TextStream stream(request.stop_strings);
  GenerationResult result;
  auto emit = [&](const std::string& text) {
    if (!text.empty() && on_text) on_text(text);
  };

  // The token that follows `tokens`: chosen on the model's device when the backend can (no logits
  // cross to the host), else sampled here from the logits.
  const runtime::DeviceSampling device_sampling{request.sampling.temperature, request.sampling.top_k,
                                              request.sampling.top_p, request.sampling.seed};
  auto feed = [&](const int32_t* tokens, int64_t n) {
    if (model.samples_on_device()) return model.forward_and_sample(tokens, n, device_sampling);
    model.forward(tokens, n, runtime::LogitsFor::LastToken, logits.data());
    return sampler.sample(logits.data(), vocab);
  };

  const auto prefill_start = Clock::now();
  int32_t next = feed(request.prompt.data(), static_cast<int64_t>(request.prompt.size()));
  result.timings.prompt_tokens = static_cast<int64_t>(request.prompt.size());
  result.timings.prefill_seconds = seconds_since(prefill_start);

  const auto decode_start = Clock::now();
  while (true) {
    if (static_cast<int64_t>(result.tokens.size()) >= request.max_tokens) {
      result.stop_reason = StopReason::MaxTokens;
      break;
    }
    const int32_t token = next;
    if (request.stop_at_eos && std::find(stop_ids.begin(), stop_ids.end(), token) != stop_ids.end()) {
      result.stop_reason = StopReason::EndOfSequence;
      break;
    }
    result.tokens.push_back(token);
    emit(stream.push(tokenizer.token_bytes(token)));
    if (stream.stopped()) {
      result.stop_reason = StopReason::StopString;
      break;
    }
    if (static_cast<int64_t>(result.tokens.size()) >= request.max_tokens) {
      result.stop_reason = StopReason::MaxTokens;
      break;
    }
    if (model.cached_tokens() >= context) {
      result.stop_reason = StopReason::ContextFull;
      break;
    }
    next = feed(&token, 1);
  }
  emit(stream.flush());
  result.text = stream.text();
  result.timings.generated_tokens = static_cast<int64_t>(result.tokens.size());
  result.timings.decode_seconds = seconds_since(decode_start);
  return result;
}

}  // namespace deltainfer::engine
