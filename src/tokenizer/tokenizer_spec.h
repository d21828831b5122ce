#pragma once
// Everything a byte-level BPE tokenizer is built from, as plain data. The GGUF and HF loaders fill
// it from a model file; tests build it by hand.
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tokenizer/pre_tokenizer.h"

namespace deltainfer::tokenizer {

// A token matched verbatim in the text before pre-tokenization (HF added_tokens; GGUF tokens of
// type CONTROL or USER_DEFINED).
struct AddedToken {
  int32_t id = 0;
  std::string content;
  bool special = true;   // false: matched even when special tokens are not parsed (HF, llama.cpp)
  bool lstrip = false;   // swallows the whitespace before it
  bool rstrip = false;   // swallows the whitespace after it
};

struct TokenizerSpec {
  std::string source;                 // file or directory, for messages
  std::vector<std::string> vocab;     // id -> token text (byte-level alphabet for BPE tokens)
  std::vector<std::pair<std::string, std::string>> merges;  // rank order
  std::vector<AddedToken> added_tokens;
  std::vector<std::string> pre_tokenizer_regexes;  // applied in turn; see pre_tokenizer.h
  bool ignore_merges = false;         // HF BPE ignore_merges: a piece that is a token stays whole
  std::optional<int32_t> bos_id, eos_id, unk_id, pad_id;
  bool add_bos = false;               // the model expects BOS before a prompt
  std::string chat_template;          // the Jinja source, empty when the file has none
};

}  // namespace deltainfer::tokenizer
