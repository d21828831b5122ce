#include "tokenizer/tokenizer.h"

#include <algorithm>
#include <filesystem>

#include "core/error.h"
#include "io/gguf.h"
#include "tokenizer/byte_level.h"

namespace deltainfer::tokenizer {
namespace {

void check_id(const TokenizerSpec& spec, const std::optional<int32_t>& id, const char* what) {
  if (id && (*id < 0 || static_cast<size_t>(*id) >= spec.vocab.size())) {
    throw_input_error("{}: {} id {} is outside the vocabulary of {} tokens", spec.source, what, *id, spec.vocab.size());
  }
}

TokenizerSpec validated(TokenizerSpec spec) {
  if (spec.vocab.empty()) throw_input_error("{}: the tokenizer has an empty vocabulary", spec.source);
  check_id(spec, spec.bos_id, "BOS");
  check_id(spec, spec.eos_id, "EOS");
  check_id(spec, spec.unk_id, "unknown-token");
  check_id(spec, spec.pad_id, "padding");
  for (const AddedToken& token : spec.added_tokens) {
    check_id(spec, token.id, "added token");
    if (token.content.empty()) throw_input_error("{}: added token {} has empty text", spec.source, token.id);
  }
  return spec;
}

}  // namespace

Tokenizer::Tokenizer(TokenizerSpec spec)
    : spec_(validated(std::move(spec))),
      pre_tokenizer_(spec_.pre_tokenizer_regexes, spec_.source),
      bpe_(spec_.vocab, spec_.merges, spec_.ignore_merges, spec_.source),
      added_(spec_.added_tokens),
      chat_format_(detect_chat_format(spec_.chat_template)),
      default_system_(tokenizer::default_system_prompt(spec_.chat_template)) {
  token_bytes_.reserve(spec_.vocab.size());
  for (const std::string& text : spec_.vocab) token_bytes_.push_back(token_text_to_bytes(text));
  // Added tokens decode to their content, like HF (their vocabulary slot may be a placeholder).
  for (const AddedToken& token : spec_.added_tokens) token_bytes_[token.id] = token_text_to_bytes(token.content);
}

Tokenizer Tokenizer::load(const std::string& model_path) {
  std::error_code error;
  if (std::filesystem::is_directory(model_path, error)) return from_hf_dir(model_path);
  return from_gguf(io::GgufFile::open(model_path));
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool parse_special) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 1);
  for (const TextSegment& segment : added_.split(text, parse_special)) {
    if (segment.token >= 0) {
      ids.push_back(segment.token);
      continue;
    }
    for (std::string_view piece : pre_tokenizer_.split(segment.text)) bpe_.encode(piece, ids);
  }
  return ids;
}

std::string Tokenizer::token_bytes(int32_t id) const {
  if (id < 0 || id >= vocab_size()) return {};
  return token_bytes_[static_cast<size_t>(id)];
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string out;
  for (int32_t id : ids) {
    if (id >= 0 && id < vocab_size()) out += token_bytes_[static_cast<size_t>(id)];
  }
  return out;
}

std::vector<int32_t> Tokenizer::stop_ids() const {
  std::vector<int32_t> ids;
  if (spec_.eos_id) ids.push_back(*spec_.eos_id);
  for (const char* piece : {"<|im_end|>", "<|eot_id|>", "<|eom_id|>", "<|endoftext|>", "<|end_of_text|>"}) {
    const std::optional<int32_t> id = find_token(piece);
    if (id && std::find(ids.begin(), ids.end(), *id) == ids.end()) ids.push_back(*id);
  }
  return ids;
}

std::optional<int32_t> Tokenizer::find_token(std::string_view piece) const {
  for (const AddedToken& token : spec_.added_tokens) {
    if (token.content == piece) return token.id;
  }
  const auto it = std::find(spec_.vocab.begin(), spec_.vocab.end(), piece);
  if (it == spec_.vocab.end()) return std::nullopt;
  return static_cast<int32_t>(it - spec_.vocab.begin());
}

std::string Tokenizer::apply_chat_template(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const {
  return tokenizer::apply_chat_template(chat_format_, messages, add_generation_prompt, default_system_);
}

}  // namespace deltainfer::tokenizer
