// `deltainfer inspect PATH`: what a model file holds, from its metadata and tensor table only (no
// weight is read or dequantized, so a file with a tensor type we cannot load still inspects).
#include <fmt/format.h>

#include <cstdint>
#include <memory>
#include <string>

#include "commands.h"
#include "model/host_memory_plan.h"
#include "model/model_source.h"
#include "tokenizer/tokenizer.h"

namespace deltainfer::cli {
namespace {

const char* rope_style_name(model::RopeStyle style) {
  return style == model::RopeStyle::Interleaved ? "interleaved" : "half-split";
}

constexpr int64_t kReferenceContext = 4096;  // a context every model here supports, for comparison

std::string bytes_text(uint64_t bytes) {
  const auto value = static_cast<double>(bytes);
  if (bytes >= (uint64_t{1} << 30)) return fmt::format("{:.2f} GiB", value / (1 << 30));
  if (bytes >= (uint64_t{1} << 20)) return fmt::format("{:.1f} MiB", value / (1 << 20));
  return fmt::format("{:.1f} KiB", value / (1 << 10));
}

void print_memory(const model::ModelSource& source) {
  const model::ModelMemory memory = model::model_memory(source);
  const model::ModelConfig& c = source.config();
  fmt::print("weights:         {}{} as f32 (CPU path)\n",
             memory.stored_weight_bytes ? bytes_text(*memory.stored_weight_bytes) + " stored, " : "",
             bytes_text(memory.f32_weight_bytes));
  fmt::print("kv cache (f32):  {}/token; {} at {} tokens (model context), {} at {}\n",
             bytes_text(memory.kv_bytes_per_token), bytes_text(memory.kv_cache_bytes(c.context_length)),
             c.context_length, bytes_text(memory.kv_cache_bytes(kReferenceContext)), kReferenceContext);
}

int run_inspect(const std::string& path) {
  const std::unique_ptr<model::ModelSource> source = model::open_model_source(path);
  const model::ModelConfig& c = source->config();
  fmt::print("file:            {}\n", source->path());
  fmt::print("format:          {}\n", source->format());
  fmt::print("name:            {}\n", c.name);
  fmt::print("architecture:    {}\n", model::architecture_name(c.arch));
  fmt::print("layers:          {}\n", c.n_layers);
  fmt::print("hidden size:     {}\n", c.d_model);
  fmt::print("heads:           {}\n", c.n_heads);
  fmt::print("kv heads:        {}\n", c.n_kv_heads);
  fmt::print("head dim:        {}\n", c.head_dim);
  fmt::print("ffn size:        {}\n", c.ffn_dim);
  fmt::print("context length:  {}\n", c.context_length);
  fmt::print("vocabulary:      {}\n", c.vocab_size);
  fmt::print("rope:            theta {}, {}{}\n", c.rope_theta, rope_style_name(c.rope_style),
             c.rope_scaling.factor > 1.0f ? fmt::format(", llama3 scaling x{}", c.rope_scaling.factor) : "");
  fmt::print("rms eps:         {}\n", c.rms_eps);
  fmt::print("tied embeddings: {}\n", c.tied_embeddings ? "yes" : "no");
  fmt::print("qkv bias:        {}\n", c.qkv_bias ? "yes" : "no");
  fmt::print("qk norm:         {}\n", c.qk_norm ? "yes" : "no");
  std::string types;
  for (const auto& [type, count] : source->tensor_type_counts()) {
    types += fmt::format("{}{} x{}", types.empty() ? "" : ", ", type, count);
  }
  fmt::print("tensor types:    {}\n", types);
  print_memory(*source);
  const tokenizer::Tokenizer tok = tokenizer::Tokenizer::load(path);
  fmt::print("tokenizer:       {} tokens, bos {}, eos {}\n", tok.vocab_size(),
             tok.bos_id() ? std::to_string(*tok.bos_id()) : "none", tok.eos_id() ? std::to_string(*tok.eos_id()) : "none");
  fmt::print("chat template:   {}\n", tok.chat_template().empty()
                                          ? std::string("none")
                                          : fmt::format("yes ({})", tokenizer::chat_format_name(tok.chat_format())));
  return 0;
}

}  // namespace

Command register_inspect(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand("inspect", "Print a model file's architecture, shapes and tensor types");
  auto path = std::make_shared<std::string>();
  cmd->add_option("path", *path, "GGUF file or HF model directory")->required();
  return {cmd, [path] { return run_inspect(*path); }};
}

}  // namespace deltainfer::cli
