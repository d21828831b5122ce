#include "eval/scoring.h"

#include <cctype>

namespace deltainfer::eval {
namespace {

std::string normalized(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 && c != '\n' && c != '\t') continue;  // RULER strips non-printable characters
    out.push_back(static_cast<char>(std::tolower(byte)));
  }
  return out;
}

}  // namespace

double string_match_all(std::string_view answer, const std::vector<std::string>& expected) {
  if (expected.empty()) return 0.0;
  const std::string haystack = normalized(answer);
  int found = 0;
  for (const std::string& value : expected) {
    if (haystack.find(normalized(value)) != std::string::npos) ++found;
  }
  return static_cast<double>(found) / static_cast<double>(expected.size());
}

}  // namespace deltainfer::eval
