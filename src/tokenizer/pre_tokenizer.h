#pragma once
// Pre-tokenizer: splits text into the pieces BPE merges within, by a chain of regexes applied in
// turn (each to every piece the previous one produced). Every regex splits "isolated", as HF's
// Split/ByteLevel/Digits do: the matches and the stretches between them all become pieces, so the
// pieces always concatenate back to the input. Regexes run through PCRE2 in UTF + UCP mode; bytes
// that are not valid UTF-8 never match and so end up in pieces of their own.
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace deltainfer::tokenizer {

enum class PreTokenizerKind {
  Gpt2,    // HF ByteLevel(use_regex): GPT-2's regex
  SmolLM,  // HF Sequence[Digits(individual_digits), ByteLevel(use_regex)]: every digit alone, then GPT-2's
  Llama3,  // HF Split(Llama 3 / cl100k regex): up to three digits together
  Qwen2,   // HF Split(Qwen2 regex): like Llama 3 but one digit at a time
};

const char* pre_tokenizer_name(PreTokenizerKind kind);

// The regex chain that reproduces the family's HF pre-tokenizer.
std::vector<std::string> pre_tokenizer_regexes(PreTokenizerKind kind);

extern const char* const kGpt2Regex;
extern const char* const kLlama3Regex;
extern const char* const kQwen2Regex;
extern const char* const kDigitRegex;  // HF Digits(individual_digits=true)

class PreTokenizer {
 public:
  // Throws InputError when a regex does not compile (`source` names where it came from).
  PreTokenizer(const std::vector<std::string>& regexes, const std::string& source);
  ~PreTokenizer();
  PreTokenizer(PreTokenizer&&) noexcept;
  PreTokenizer& operator=(PreTokenizer&&) noexcept;

  std::vector<std::string_view> split(std::string_view text) const;

 private:
  struct Compiled;
  std::vector<std::unique_ptr<Compiled>> regexes_;
};

}  // namespace deltainfer::tokenizer
