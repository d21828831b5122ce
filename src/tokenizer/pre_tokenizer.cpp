#include "tokenizer/pre_tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "core/error.h"

namespace deltainfer::tokenizer {

const char* const kGpt2Regex = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
const char* const kLlama3Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char* const kQwen2Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char* const kDigitRegex = R"(\p{N})";

const char* pre_tokenizer_name(PreTokenizerKind kind) {
  switch (kind) {
    case PreTokenizerKind::Gpt2: return "gpt2";
    case PreTokenizerKind::SmolLM: return "smollm";
    case PreTokenizerKind::Llama3: return "llama3";
    case PreTokenizerKind::Qwen2: return "qwen2";
  }
  return "?";
}

std::vector<std::string> pre_tokenizer_regexes(PreTokenizerKind kind) {
  switch (kind) {
    case PreTokenizerKind::Gpt2: return {kGpt2Regex};
    case PreTokenizerKind::SmolLM: return {kDigitRegex, kGpt2Regex};
    case PreTokenizerKind::Llama3: return {kLlama3Regex};
    case PreTokenizerKind::Qwen2: return {kQwen2Regex};
  }
  return {kGpt2Regex};
}

struct PreTokenizer::Compiled {
  pcre2_code* code = nullptr;
  ~Compiled() { pcre2_code_free(code); }
};

PreTokenizer::PreTokenizer(const std::vector<std::string>& regexes, const std::string& source) {
  for (const std::string& pattern : regexes) {
    int error = 0;
    PCRE2_SIZE offset = 0;
    // MATCH_INVALID_UTF: invalid UTF-8 in the subject simply never matches (instead of an error).
    pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                     PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &error, &offset, nullptr);
    if (code == nullptr) {
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(error, message, sizeof(message));
      throw_input_error("{}: pre-tokenizer regex '{}' does not compile at offset {}: {}", source, pattern, offset,
                        reinterpret_cast<const char*>(message));
    }
    pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // falls back to the interpreter when JIT is unavailable
    auto compiled = std::make_unique<Compiled>();
    compiled->code = code;
    regexes_.push_back(std::move(compiled));
  }
}

PreTokenizer::~PreTokenizer() = default;
PreTokenizer::PreTokenizer(PreTokenizer&&) noexcept = default;
PreTokenizer& PreTokenizer::operator=(PreTokenizer&&) noexcept = default;

namespace {

struct MatchData {
  pcre2_match_data* data;
  explicit MatchData(const pcre2_code* code) : data(pcre2_match_data_create_from_pattern(code, nullptr)) {}
  ~MatchData() { pcre2_match_data_free(data); }
  MatchData(const MatchData&) = delete;
  MatchData& operator=(const MatchData&) = delete;
};

void split_isolated(const pcre2_code* code, std::string_view text, std::vector<std::string_view>& out) {
  const MatchData match(code);
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t emitted = 0;  // end of the last piece pushed
  size_t start = 0;
  while (start < text.size()) {
    const int rc = pcre2_match(code, subject, text.size(), start, 0, match.data, nullptr);
    if (rc < 0) break;  // no further match (or a resource limit): the rest is one piece
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(match.data);
    const size_t begin = ovector[0];
    const size_t end = ovector[1];
    if (begin > emitted) out.push_back(text.substr(emitted, begin - emitted));
    if (end > begin) {
      out.push_back(text.substr(begin, end - begin));
      emitted = end;
      start = end;
    } else {
      start = end + 1;  // an empty match: move on (none of our regexes can match empty)
    }
  }
  if (emitted < text.size()) out.push_back(text.substr(emitted));
}

}  // namespace

std::vector<std::string_view> PreTokenizer::split(std::string_view text) const {
  std::vector<std::string_view> pieces;
  if (text.empty()) return pieces;
  pieces.push_back(text);
  std::vector<std::string_view> next;
  for (const auto& regex : regexes_) {
    next.clear();
    for (std::string_view piece : pieces) split_isolated(regex->code, piece, next);
    pieces.swap(next);
  }
  return pieces;
}

}  // namespace deltainfer::tokenizer
