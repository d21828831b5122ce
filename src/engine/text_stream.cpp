#include "engine/text_stream.h"

#include <algorithm>

namespace deltainfer::engine {

size_t complete_utf8_prefix(std::string_view bytes) {
  // Walk back over at most 3 continuation bytes to the last lead byte; keep it only if its
  // sequence is complete. Invalid bytes count as complete single characters.
  const size_t n = bytes.size();
  for (size_t back = 1; back <= std::min<size_t>(4, n); ++back) {
    const auto byte = static_cast<unsigned char>(bytes[n - back]);
    if ((byte & 0xC0) == 0x80) continue;  // continuation byte
    size_t length = 1;
    if ((byte & 0xE0) == 0xC0) length = 2;
    else if ((byte & 0xF0) == 0xE0) length = 3;
    else if ((byte & 0xF8) == 0xF0) length = 4;
    return length > back ? n - back : n;
  }
  return n;
}

TextStream::TextStream(std::vector<std::string> stop_strings) : stop_strings_(std::move(stop_strings)) {
  stop_strings_.erase(std::remove(stop_strings_.begin(), stop_strings_.end(), std::string()), stop_strings_.end());
}

std::string TextStream::release(size_t count) {
  std::string out = pending_.substr(0, count);
  pending_.erase(0, count);
  released_ += out;
  return out;
}

std::string TextStream::push(std::string_view token_bytes) {
  if (stopped_) return {};
  pending_ += token_bytes;
  size_t stop_at = std::string::npos;
  for (const std::string& stop : stop_strings_) stop_at = std::min(stop_at, pending_.find(stop));
  if (stop_at != std::string::npos) {
    stopped_ = true;
    std::string out = release(stop_at);
    pending_.clear();
    return out;
  }
  // Hold back the longest tail that is a proper prefix of some stop string.
  size_t hold = 0;
  for (const std::string& stop : stop_strings_) {
    for (size_t len = std::min(stop.size() - 1, pending_.size()); len > hold; --len) {
      if (pending_.compare(pending_.size() - len, len, stop, 0, len) == 0) {
        hold = len;
        break;
      }
    }
  }
  const size_t safe = complete_utf8_prefix(std::string_view(pending_).substr(0, pending_.size() - hold));
  return release(safe);
}

std::string TextStream::flush() {
  if (stopped_) return {};
  return release(pending_.size());
}

}  // namespace deltainfer::engine
