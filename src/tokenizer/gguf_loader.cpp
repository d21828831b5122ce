// Tokenizer::from_gguf: llama.cpp's tokenizer.ggml.* keys -> TokenizerSpec.
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "io/gguf.h"
#include "tokenizer/tokenizer.h"

namespace deltainfer::tokenizer {
namespace {

// llama.cpp's token types.
constexpr int64_t kTypeControl = 3;
constexpr int64_t kTypeUserDefined = 4;

// tokenizer.ggml.pre -> the HF pre-tokenizer of that family. "default"/"gpt2" are HF's ByteLevel
// (GPT-2 regex); the starcoder-like vocabularies (SmolLM among them) split digits first.
std::optional<PreTokenizerKind> pre_tokenizer_for(const std::string& pre) {
  if (pre == "default" || pre == "gpt2" || pre == "gpt-2") return PreTokenizerKind::Gpt2;
  if (pre == "smollm" || pre == "starcoder" || pre == "refact" || pre == "codeshell") return PreTokenizerKind::SmolLM;
  if (pre == "llama3" || pre == "llama-v3" || pre == "llama-bpe" || pre == "smaug-bpe" || pre == "falcon3" ||
      pre == "dbrx") {
    return PreTokenizerKind::Llama3;
  }
  if (pre == "qwen2" || pre == "deepseek-r1-qwen" || pre == "megrez") return PreTokenizerKind::Qwen2;
  return std::nullopt;
}

std::optional<int32_t> optional_id(const io::GgufFile& file, const char* key) {
  const std::optional<int64_t> value = file.get_int(key);
  if (!value) return std::nullopt;
  if (*value < 0 || *value > INT32_MAX) throw_input_error("{}: {} = {} is not a token id", file.path(), key, *value);
  return static_cast<int32_t>(*value);
}

std::vector<std::pair<std::string, std::string>> split_merges(const io::GgufFile& file) {
  std::vector<std::pair<std::string, std::string>> merges;
  const std::vector<std::string> lines = file.get_string_array("tokenizer.ggml.merges");
  merges.reserve(lines.size());
  for (size_t i = 0; i < lines.size(); ++i) {
    const size_t space = lines[i].find(' ', 1);
    if (space == std::string::npos) {
      throw_input_error("{}: tokenizer.ggml.merges[{}] = '{}' is not two tokens separated by a space", file.path(), i,
                        lines[i]);
    }
    merges.emplace_back(lines[i].substr(0, space), lines[i].substr(space + 1));
  }
  return merges;
}

}  // namespace

Tokenizer Tokenizer::from_gguf(const io::GgufFile& file) {
  const std::string model = file.get_string("tokenizer.ggml.model").value_or("");
  if (model != "gpt2") {
    throw_input_error("{}: tokenizer.ggml.model is '{}'; only byte-level BPE ('gpt2') is supported", file.path(),
                      model.empty() ? "(absent)" : model);
  }
  const std::string pre = file.get_string("tokenizer.ggml.pre").value_or("default");
  const std::optional<PreTokenizerKind> kind = pre_tokenizer_for(pre);
  if (!kind) {
    throw_input_error("{}: tokenizer.ggml.pre '{}' is not supported (known: default, gpt2, smollm, starcoder, "
                      "llama-bpe, llama3, qwen2, ...)", file.path(), pre);
  }

  TokenizerSpec spec;
  spec.source = file.path();
  spec.vocab = file.get_string_array("tokenizer.ggml.tokens");
  if (spec.vocab.empty()) throw_input_error("{}: tokenizer.ggml.tokens is missing or empty", file.path());
  spec.merges = split_merges(file);
  spec.pre_tokenizer_regexes = pre_tokenizer_regexes(*kind);
  spec.ignore_merges = *kind == PreTokenizerKind::Llama3;  // Llama 3's tokenizer.json sets ignore_merges

  const std::vector<int64_t> types = file.get_int_array("tokenizer.ggml.token_type");
  if (!types.empty() && types.size() != spec.vocab.size()) {
    throw_input_error("{}: tokenizer.ggml.token_type has {} entries for {} tokens", file.path(), types.size(),
                      spec.vocab.size());
  }
  for (size_t id = 0; id < types.size(); ++id) {
    if ((types[id] != kTypeControl && types[id] != kTypeUserDefined) || spec.vocab[id].empty()) continue;
    spec.added_tokens.push_back({static_cast<int32_t>(id), spec.vocab[id], types[id] == kTypeControl, false, false});
  }
  spec.bos_id = optional_id(file, "tokenizer.ggml.bos_token_id");
  spec.eos_id = optional_id(file, "tokenizer.ggml.eos_token_id");
  spec.unk_id = optional_id(file, "tokenizer.ggml.unknown_token_id");
  spec.pad_id = optional_id(file, "tokenizer.ggml.padding_token_id");
  spec.add_bos = file.get_bool("tokenizer.ggml.add_bos_token").value_or(false);
  spec.chat_template = file.get_string("tokenizer.chat_template").value_or("");
  return Tokenizer(std::move(spec));
}

}  // namespace deltainfer::tokenizer
