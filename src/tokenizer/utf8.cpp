#include "tokenizer/utf8.h"

namespace deltainfer::tokenizer {

bool next_codepoint(std::string_view text, size_t& pos, uint32_t& codepoint) {
  const auto byte = [&](size_t i) { return static_cast<uint8_t>(text[i]); };
  const uint8_t lead = byte(pos);
  size_t length = 0;
  uint32_t min_value = 0;
  if (lead < 0x80) {
    codepoint = lead;
    pos += 1;
    return true;
  } else if ((lead & 0xE0) == 0xC0) {
    length = 2, min_value = 0x80, codepoint = lead & 0x1Fu;
  } else if ((lead & 0xF0) == 0xE0) {
    length = 3, min_value = 0x800, codepoint = lead & 0x0Fu;
  } else if ((lead & 0xF8) == 0xF0) {
    length = 4, min_value = 0x10000, codepoint = lead & 0x07u;
  } else {
    pos += 1;
    return false;
  }
  if (pos + length > text.size()) {
    pos += 1;
    return false;
  }
  for (size_t i = 1; i < length; ++i) {
    const uint8_t next = byte(pos + i);
    if ((next & 0xC0) != 0x80) {
      pos += 1;
      return false;
    }
    codepoint = (codepoint << 6) | (next & 0x3Fu);
  }
  if (codepoint < min_value || codepoint > 0x10FFFF || (codepoint >= 0xD800 && codepoint <= 0xDFFF)) {
    pos += 1;
    return false;
  }
  pos += length;
  return true;
}

void append_utf8(std::string& out, uint32_t codepoint) {
  const auto put = [&](uint32_t value) { out.push_back(static_cast<char>(static_cast<uint8_t>(value))); };
  if (codepoint < 0x80) {
    put(codepoint);
  } else if (codepoint < 0x800) {
    put(0xC0 | (codepoint >> 6));
    put(0x80 | (codepoint & 0x3F));
  } else if (codepoint < 0x10000) {
    put(0xE0 | (codepoint >> 12));
    put(0x80 | ((codepoint >> 6) & 0x3F));
    put(0x80 | (codepoint & 0x3F));
  } else {
    put(0xF0 | (codepoint >> 18));
    put(0x80 | ((codepoint >> 12) & 0x3F));
    put(0x80 | ((codepoint >> 6) & 0x3F));
    put(0x80 | (codepoint & 0x3F));
  }
}

bool is_python_space(uint32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

std::string_view trim_python_space(std::string_view text) {
  size_t begin = 0;
  while (begin < text.size()) {
    size_t next = begin;
    uint32_t c = 0;
    if (!next_codepoint(text, next, c) || !is_python_space(c)) break;
    begin = next;
  }
  size_t end = text.size();
  while (end > begin) {
    // Step back to the start of the last code point (at most 4 bytes).
    size_t start = end - 1;
    while (start > begin && end - start < 4 && (static_cast<uint8_t>(text[start]) & 0xC0) == 0x80) --start;
    size_t next = start;
    uint32_t c = 0;
    if (!next_codepoint(text, next, c) || next != end || !is_python_space(c)) break;
    end = start;
  }
  return text.substr(begin, end - begin);
}

}  // namespace deltainfer::tokenizer
