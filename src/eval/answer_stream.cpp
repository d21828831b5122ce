#include "eval/answer_stream.h"

#include <algorithm>

namespace deltainfer::eval {

AnswerStream::AnswerStream(const std::vector<int32_t>& stop_ids, int64_t max_tokens)
    : stop_ids_(stop_ids), max_tokens_(max_tokens) {}

// The checks of engine::generate's loop, in its order.
bool AnswerStream::push(int32_t token, const std::string& token_bytes, int64_t sequence_length, int64_t capacity) {
  if (done_) return false;
  if (generated_tokens() >= max_tokens_) return finish();
  if (std::find(stop_ids_.begin(), stop_ids_.end(), token) != stop_ids_.end()) return finish();
  tokens_.push_back(token);
  stream_.push(token_bytes);
  if (stream_.stopped() || generated_tokens() >= max_tokens_ || sequence_length >= capacity) return finish();
  return true;
}

bool AnswerStream::finish() {
  stream_.flush();
  done_ = true;
  return false;
}

}  // namespace deltainfer::eval
