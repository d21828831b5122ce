// `deltainfer generate`: one completion of a prompt, streamed to stdout; timings to stderr.
#include <fmt/format.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <string>

#include "attention_options.h"
#include "backend_options.h"
#include "commands.h"
#include "core/error.h"
#include "engine/engine.h"
#include "prefill_progress.h"
#include "tokenizer/chat_template.h"

namespace deltainfer::cli {
namespace {

struct GenerateOptions {
  engine::EngineConfig engine;
  BackendOptions backend;
  AttentionOptions attention;
  std::string prompt;
  std::string prompt_file;
  std::string system_prompt;
  bool chat = false;
  bool ignore_eos = false;
  int64_t max_tokens = 128;
  engine::SamplingParams sampling;
  bool seed_given = false;
  std::vector<std::string> stop;
  ProgressMode progress = ProgressMode::Auto;
};

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_input_error("cannot open prompt file '{}'", path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::vector<int32_t> build_prompt_tokens(const GenerateOptions& o, const tokenizer::Tokenizer& tok) {
  std::string text = o.prompt_file.empty() ? o.prompt : read_text_file(o.prompt_file);
  std::vector<int32_t> tokens;
  if (o.chat) {
    std::vector<tokenizer::ChatMessage> messages;
    if (!o.system_prompt.empty()) messages.push_back({"system", o.system_prompt});
    messages.push_back({"user", text});
    text = tok.apply_chat_template(messages, /*add_generation_prompt=*/true);
  } else if (tok.add_bos() && tok.bos_id()) {
    tokens.push_back(*tok.bos_id());
  }
  const std::vector<int32_t> body = tok.encode(text, /*parse_special=*/true);
  tokens.insert(tokens.end(), body.begin(), body.end());
  return tokens;
}

int run_generate(GenerateOptions& o) {
  if (!o.seed_given) o.sampling.seed = std::random_device{}();
  o.sampling.validate();
  o.engine.attention = o.attention.to_config();
  o.backend.apply_to(o.engine);
  engine::Engine engine = engine::Engine::open(o.engine, o.backend.factory());
  show_prefill_progress(engine.transformer(), o.progress);
  const std::vector<int32_t> prompt = build_prompt_tokens(o, engine.tokenizer());
  if (static_cast<int64_t>(prompt.size()) + 1 > engine.transformer().capacity()) {
    throw_input_error("the prompt has {} tokens but the context holds {} (raise --ctx-size, up to {})",
                      prompt.size(), engine.transformer().capacity(), engine.model_config().context_length);
  }
  engine::GenerationRequest request;
  request.prompt = prompt;
  request.max_tokens = o.max_tokens;
  request.sampling = o.sampling;
  request.stop_strings = o.stop;
  request.stop_at_eos = !o.ignore_eos;
  const engine::GenerationResult result = engine.generate(request, [](std::string_view text) {
    fmt::print(stdout, "{}", text);
    std::fflush(stdout);
  });
  fmt::print(stdout, "\n");
  o.attention.write_fidelity(engine.transformer());
  const engine::GenerationTimings& t = result.timings;
  fmt::print(stderr,
             "prefill: {} tokens in {:.3f} s ({:.1f} tok/s) | decode: {} tokens in {:.3f} s ({:.1f} tok/s) | "
             "stop: {} | seed: {}\n",
             t.prompt_tokens, t.prefill_seconds, t.prefill_tokens_per_second(), t.generated_tokens,
             t.decode_seconds, t.decode_tokens_per_second(), engine::stop_reason_name(result.stop_reason),
             o.sampling.seed);
  return 0;
}

}  // namespace

Command register_generate(CLI::App& app) {
  auto o = std::make_shared<GenerateOptions>();
  CLI::App* cmd = app.add_subcommand("generate", "Complete a prompt with a model");
  cmd->add_option("-m,--model", o->engine.model_path, "GGUF file or HF model directory")->required();
  auto* prompt = cmd->add_option("-p,--prompt", o->prompt, "Prompt text");
  auto* prompt_file = cmd->add_option("-f,--prompt-file", o->prompt_file, "Read the prompt from a file");
  prompt->excludes(prompt_file);
  cmd->add_option("-n,--max-tokens", o->max_tokens, "Tokens to generate at most")->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--temperature,--temp", o->sampling.temperature, "Sampling temperature; 0 is greedy")
      ->capture_default_str();
  cmd->add_option("--top-k", o->sampling.top_k, "Keep the k most likely tokens (0: all)")->capture_default_str();
  cmd->add_option("--top-p", o->sampling.top_p, "Nucleus sampling mass")->capture_default_str();
  cmd->add_option_function<uint64_t>("-s,--seed", [o](uint64_t seed) {
    o->sampling.seed = seed;
    o->seed_given = true;
  }, "Random seed (default: random, printed on stderr)");
  cmd->add_flag("--chat", o->chat, "Wrap the prompt in the model's chat template as a user turn");
  cmd->add_option("--system", o->system_prompt, "System message for --chat");
  cmd->add_option("--stop", o->stop, "Stop when this text appears (repeatable)");
  cmd->add_flag("--ignore-eos", o->ignore_eos, "Keep generating past end-of-sequence tokens");
  add_progress_option(*cmd, o->progress);
  cmd->add_option("-c,--ctx-size", o->engine.context, "KV cache positions (0: model context, max 8192)")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  cmd->add_option("-t,--threads", o->engine.threads, "CPU threads (0: all)")->check(CLI::NonNegativeNumber);
  cmd->add_option("--prefill-chunk", o->engine.prefill_chunk, "Prompt tokens per forward chunk")
      ->capture_default_str()->check(CLI::PositiveNumber);
  o->backend.add_to(*cmd);
  o->attention.add_to(*cmd);
  cmd->callback([cmd, o] {
    if (o->prompt.empty() && o->prompt_file.empty() && cmd->count("--prompt") == 0) {
      throw CLI::RequiredError("--prompt or --prompt-file");
    }
  });
  return {cmd, [o] { return run_generate(*o); }};
}

}  // namespace deltainfer::cli
