#pragma once
// Minimal UTF-8 helpers for the tokenizer: decoding that never fails (an invalid byte is reported
// as such and skipped), encoding, and Python's notion of whitespace (for Jinja's `trim`).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace deltainfer::tokenizer {

// Decodes the code point at text[pos] and advances pos past it. Returns false (and advances one
// byte) when the bytes there are not a valid, shortest-form UTF-8 sequence.
bool next_codepoint(std::string_view text, size_t& pos, uint32_t& codepoint);

void append_utf8(std::string& out, uint32_t codepoint);

// str.isspace() in Python, which Jinja's `trim` filter uses.
bool is_python_space(uint32_t codepoint);

// text without leading and trailing Python whitespace.
std::string_view trim_python_space(std::string_view text);

}  // namespace deltainfer::tokenizer
