#pragma once
// Greedy answers of many prompts under several decode methods that prefill alike
// (runtime::same_prefill), in batches: `batch` prompts are read once, one chunk per pass (packing
// chunks of several prompts changed CPU round-off and answers); then for each method in turn every
// sequence is cut back to its prompt, switched to the method, and all of them decode together,
// one pass per step, each stopping as engine::generate would (AnswerStream). A sequence's prompt
// is read in the chunks engine::generate reads it in (prefill_chunk()), so its keys and first
// token are those of a sequence run alone.
#include <cstdint>
#include <string>
#include <vector>

#include "attention/attention_config.h"
#include "runtime/transformer.h"
#include "tokenizer/tokenizer.h"

namespace deltainfer::eval {

struct AnswerJob {
  const std::vector<int32_t>* prompt = nullptr;
  int64_t max_tokens = 0;  // the task's answer budget
};

struct BatchedAnswer {
  std::string text;
  int64_t generated_tokens = 0;
  // Each forward pass's time shared out over its entries in proportion to their tokens: the
  // prompt's share of the prefill passes (the same for every method of the group, which reads
  // the prompt once), and this answer's share of the decode passes.
  double prefill_seconds = 0.0;
  double decode_seconds = 0.0;
};

// answers[m][j]: jobs[j] answered under methods[m]. InputError when batch < 1 or when the model
// refuses a sequence or a pass (e.g. too few KV pages); Error when the methods prefill differently.
std::vector<std::vector<BatchedAnswer>> answer_in_batches(runtime::Transformer& model,
                                                          const tokenizer::Tokenizer& tokenizer,
                                                          const std::vector<attention::AttentionConfig>& methods,
                                                          const std::vector<AnswerJob>& jobs, int batch);

}  // namespace deltainfer::eval
