#pragma once
// Byte-level BPE tokenizer built from a model file's own vocabulary and merges; ids match HF
// `tokenizers` for the GPT-2/SmolLM2, Llama 3 and Qwen2 families. Encoding: added (special)
// tokens are cut out of the text first, the rest is split by the family's pre-tokenizer regexes,
// and each piece is BPE-merged. Thread-safe for concurrent encode/decode.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/added_tokens.h"
#include "tokenizer/bpe.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/tokenizer_spec.h"

namespace deltainfer::io {
class GgufFile;
}

namespace deltainfer::tokenizer {

class Tokenizer {
 public:
  // Throws InputError naming spec.source when the spec is inconsistent (an id out of range, a
  // merge of unknown tokens, a regex that does not compile).
  explicit Tokenizer(TokenizerSpec spec);

  // Keys tokenizer.ggml.* and tokenizer.chat_template; the model must be "gpt2" (byte-level BPE).
  static Tokenizer from_gguf(const io::GgufFile& file);
  // tokenizer.json (BPE with a byte-level pre-tokenizer), plus tokenizer_config.json when present
  // (add_bos_token, bos/eos tokens, chat_template).
  static Tokenizer from_hf_dir(const std::string& dir);
  // A GGUF file -> from_gguf; a directory -> from_hf_dir.
  static Tokenizer load(const std::string& model_path);

  // With parse_special, special tokens written in the text (e.g. "<|im_start|>") become their ids;
  // without, they are tokenized as plain text. Never adds BOS (see add_bos()). Any bytes are
  // accepted; invalid UTF-8 is encoded byte by byte.
  std::vector<int32_t> encode(std::string_view text, bool parse_special = true) const;
  // Concatenated token_bytes; ids out of range are skipped.
  std::string decode(const std::vector<int32_t>& ids) const;
  // The raw bytes of one token, which may end inside a UTF-8 character (streaming callers must
  // hold partial characters back). Empty for an id out of range.
  std::string token_bytes(int32_t id) const;

  int32_t vocab_size() const { return static_cast<int32_t>(token_bytes_.size()); }
  std::optional<int32_t> bos_id() const { return spec_.bos_id; }
  std::optional<int32_t> eos_id() const { return spec_.eos_id; }
  // EOS plus the end-of-turn / end-of-text tokens the vocabulary has (<|im_end|>, <|eot_id|>,
  // <|eom_id|>, <|endoftext|>, <|end_of_text|>), without repeats.
  std::vector<int32_t> stop_ids() const;
  bool add_bos() const { return spec_.add_bos; }
  // The id of the token whose text is exactly `piece` (as the vocabulary spells it, e.g. "Ġthe"
  // or "<|im_end|>").
  std::optional<int32_t> find_token(std::string_view piece) const;

  ChatFormat chat_format() const { return chat_format_; }
  const std::string& chat_template() const { return spec_.chat_template; }
  std::optional<std::string> default_system_prompt() const { return default_system_; }
  // apply_chat_template with this model's format and default system prompt.
  std::string apply_chat_template(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const;

  const TokenizerSpec& spec() const { return spec_; }

 private:
  TokenizerSpec spec_;
  std::vector<std::string> token_bytes_;
  PreTokenizer pre_tokenizer_;
  BytePairEncoder bpe_;
  AddedTokenSplitter added_;
  ChatFormat chat_format_;
  std::optional<std::string> default_system_;
};

}  // namespace deltainfer::tokenizer
