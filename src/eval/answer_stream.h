#pragma once
// AnswerStream: one greedy answer growing token by token, stopped exactly where engine::generate
// (engine/generator.cpp) stops an eval request (no stop strings, stop at end-of-turn/EOS): at the
// answer budget, at a stop id, or when the sequence fills its context. Text goes through the
// engine's own TextStream, so a batched answer reads as engine::generate's would.
#include <cstdint>
#include <string>
#include <vector>

#include "engine/text_stream.h"

namespace deltainfer::eval {

class AnswerStream {
 public:
  // stop_ids: tokenizer::Tokenizer::stop_ids(); max_tokens: the task's answer budget.
  AnswerStream(const std::vector<int32_t>& stop_ids, int64_t max_tokens);

  // Takes the token the model chose; `token_bytes` its bytes, `sequence_length` the positions
  // cached before it is fed back and `capacity` their limit. Returns true while the answer wants
  // `token` fed as the next decode step.
  bool push(int32_t token, const std::string& token_bytes, int64_t sequence_length, int64_t capacity);
  bool done() const { return done_; }
  // The answer's text (complete once done()).
  std::string text() const { return stream_.text(); }
  int64_t generated_tokens() const { return static_cast<int64_t>(tokens_.size()); }

 private:
  bool finish();

  const std::vector<int32_t>& stop_ids_;
  int64_t max_tokens_;
  std::vector<int32_t> tokens_;
  engine::TextStream stream_{{}};
  bool done_ = false;
};

}  // namespace deltainfer::eval
