#include "tokenizer/byte_level.h"

#include <array>

#include "tokenizer/utf8.h"

namespace deltainfer::tokenizer {
namespace {

struct Alphabet {
  std::array<uint32_t, 256> to_codepoint{};
  std::array<int16_t, 324> to_byte{};  // code points 0..323 cover the whole alphabet

  Alphabet() {
    to_byte.fill(-1);
    uint32_t extra = 0;
    for (uint32_t b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      to_codepoint[b] = printable ? b : 256 + extra++;
      to_byte[to_codepoint[b]] = static_cast<int16_t>(b);
    }
  }
};

const Alphabet& alphabet() {
  static const Alphabet instance;
  return instance;
}

}  // namespace

uint32_t byte_to_codepoint(uint8_t byte) { return alphabet().to_codepoint[byte]; }

std::optional<uint8_t> codepoint_to_byte(uint32_t codepoint) {
  if (codepoint >= alphabet().to_byte.size() || alphabet().to_byte[codepoint] < 0) return std::nullopt;
  return static_cast<uint8_t>(alphabet().to_byte[codepoint]);
}

std::string byte_level_spelling(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) append_utf8(out, byte_to_codepoint(static_cast<uint8_t>(c)));
  return out;
}

std::string token_text_to_bytes(std::string_view token_text) {
  std::string out;
  out.reserve(token_text.size());
  size_t pos = 0;
  while (pos < token_text.size()) {
    uint32_t codepoint = 0;
    if (!next_codepoint(token_text, pos, codepoint)) return std::string(token_text);
    const std::optional<uint8_t> byte = codepoint_to_byte(codepoint);
    if (!byte) return std::string(token_text);
    out.push_back(static_cast<char>(*byte));
  }
  return out;
}

}  // namespace deltainfer::tokenizer
