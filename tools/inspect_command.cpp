// `deltainfer inspect PATH`: what a model file holds, before any weight is loaded.
#include <fmt/format.h>

#include <memory>
#include <string>

#include "commands.h"
#include "model/model_source.h"
#include "tokenizer/tokenizer.h"

namespace deltainfer::cli {
namespace {

const char* rope_style_name(model::RopeStyle style) {
  return style == model::RopeStyle::Interleaved ? "interleaved" : "half-split";
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
  const tokenizer::Tokenizer tok = tokenizer::Tokenizer::load(path);
  fmt::print("tokenizer:       {} tokens, bos {}, eos {}\n", tok.vocab_size(),
             tok.bos_id() ? std::to_string(*tok.bos_id()) : "none", tok.eos_id() ? std::to_string(*tok.eos_id()) : "none");
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
