#pragma once
// Splits text around added (special) tokens the way HF does: leftmost-longest matches of the
// tokens' verbatim content; lstrip/rstrip tokens swallow adjacent whitespace.
#include <cstdint>
#include <string_view>
#include <vector>

#include "tokenizer/tokenizer_spec.h"

namespace deltainfer::tokenizer {

struct TextSegment {
  std::string_view text;  // plain text to pre-tokenize when token < 0
  int32_t token = -1;
};

class AddedTokenSplitter {
 public:
  explicit AddedTokenSplitter(std::vector<AddedToken> tokens);

  // With include_special false, only non-special added tokens are matched.
  std::vector<TextSegment> split(std::string_view text, bool include_special) const;

 private:
  const AddedToken* longest_at(std::string_view text, size_t pos, bool include_special) const;

  std::vector<AddedToken> tokens_;
  std::vector<std::vector<size_t>> by_first_byte_;  // indices into tokens_, longest first
};

}  // namespace deltainfer::tokenizer
