#pragma once
// Turns generated token bytes into text that is safe to show: complete UTF-8 only, and nothing that
// could still turn out to be the start of a stop string.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace deltainfer::engine {

class TextStream {
 public:
  explicit TextStream(std::vector<std::string> stop_strings);

  // Adds a token's bytes; returns the text that became final (may be empty).
  std::string push(std::string_view token_bytes);
  // True once a stop string has appeared; the text before it has been released, the rest dropped.
  bool stopped() const { return stopped_; }
  // Releases whatever is held back (end of generation).
  std::string flush();
  // All text released so far.
  const std::string& text() const { return released_; }

 private:
  std::string release(size_t count);

  std::vector<std::string> stop_strings_;
  std::string pending_;
  std::string released_;
  bool stopped_ = false;
};

// Length of the longest prefix of `bytes` that ends on a UTF-8 character boundary.
size_t complete_utf8_prefix(std::string_view bytes);

}  // namespace deltainfer::engine
