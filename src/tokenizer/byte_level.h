#pragma once
// GPT-2's byte-level alphabet: every byte is spelled as one printable code point (printable
// Latin-1 bytes as themselves, the other 68 as U+0100..U+0143, so ' ' is 'Ġ'), which is how
// byte-level BPE vocabularies (GGUF "gpt2", HF ByteLevel) write their tokens.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace deltainfer::tokenizer {

uint32_t byte_to_codepoint(uint8_t byte);
std::optional<uint8_t> codepoint_to_byte(uint32_t codepoint);

// Raw bytes -> their byte-level spelling (UTF-8).
std::string byte_level_spelling(std::string_view bytes);

// A vocabulary token's text -> the bytes it stands for. Like HF's ByteLevel decoder, a token with
// any character outside the alphabet (e.g. an added token containing a space) stands for its own
// UTF-8 text.
std::string token_text_to_bytes(std::string_view token_text);

}  // namespace deltainfer::tokenizer
