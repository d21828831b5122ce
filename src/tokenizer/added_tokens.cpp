#include "tokenizer/added_tokens.h"

#include <algorithm>

namespace deltainfer::tokenizer {
namespace {

bool is_ascii_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

}  // namespace

AddedTokenSplitter::AddedTokenSplitter(std::vector<AddedToken> tokens) : tokens_(std::move(tokens)), by_first_byte_(256) {
  for (size_t i = 0; i < tokens_.size(); ++i) {
    if (tokens_[i].content.empty()) continue;
    by_first_byte_[static_cast<uint8_t>(tokens_[i].content[0])].push_back(i);
  }
  for (auto& list : by_first_byte_) {
    std::stable_sort(list.begin(), list.end(),
                     [&](size_t a, size_t b) { return tokens_[a].content.size() > tokens_[b].content.size(); });
  }
}

const AddedToken* AddedTokenSplitter::longest_at(std::string_view text, size_t pos, bool include_special) const {
  for (size_t index : by_first_byte_[static_cast<uint8_t>(text[pos])]) {
    const AddedToken& token = tokens_[index];
    if (!include_special && token.special) continue;
    if (text.compare(pos, token.content.size(), token.content) == 0) return &token;
  }
  return nullptr;
}

std::vector<TextSegment> AddedTokenSplitter::split(std::string_view text, bool include_special) const {
  std::vector<TextSegment> segments;
  size_t plain_begin = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    const AddedToken* token = longest_at(text, pos, include_special);
    if (token == nullptr) {
      ++pos;
      continue;
    }
    size_t plain_end = pos;
    if (token->lstrip) {
      while (plain_end > plain_begin && is_ascii_space(text[plain_end - 1])) --plain_end;
    }
    if (plain_end > plain_begin) segments.push_back({text.substr(plain_begin, plain_end - plain_begin), -1});
    segments.push_back({{}, token->id});
    pos += token->content.size();
    if (token->rstrip) {
      while (pos < text.size() && is_ascii_space(text[pos])) ++pos;
    }
    plain_begin = pos;
  }
  if (plain_begin < text.size()) segments.push_back({text.substr(plain_begin), -1});
  return segments;
}

}  // namespace deltainfer::tokenizer
