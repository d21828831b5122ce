#pragma once
// The long-context retrieval tasks, after RULER (Hsieh et al., 2024): a haystack of real prose
// (FillerCorpus) with needles hidden at chosen depths, a question at the end, and the values the
// answer must contain. Every sample is a pure function of its seed, its target length and the
// corpus, so every method sees the same samples.
//
// Lengths are in the model's tokens: the generator asks a PromptTokenCounter how many tokens the
// rendered prompt takes (chat template + user turn + answer prefix) and fits the haystack, a whole
// number of sentences, to the largest size that stays within the target.
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "eval/filler_corpus.h"

namespace deltainfer::eval {

enum class TaskKind { Passkey, NiahSingle, NiahMultiKey, NiahMultiValue, NiahMultiQuery, VariableTracking };

const char* task_name(TaskKind task);
// "passkey", "niah_single", "niah_multikey", "niah_multivalue", "niah_multiquery", "vt".
// Throws InputError naming the valid ones.
TaskKind parse_task(std::string_view name);
std::vector<TaskKind> all_tasks();
// Greedy tokens to generate for the answer (RULER's per-task budget, cut to what the values need).
int64_t answer_token_budget(TaskKind task);

struct TaskPrompt {
  std::string user;                   // instruction, haystack with needles, question
  std::string answer_prefix;          // start of the assistant's answer, fed with the prompt
  std::vector<std::string> expected;  // every value the answer must contain
  int64_t prompt_tokens = 0;          // as counted by the PromptTokenCounter
  std::vector<double> depths;         // where each needle sits, as a fraction of the haystack
};

// Tokens the model reads for a prompt: `user` inside the chat template, then `answer_prefix`.
using PromptTokenCounter = std::function<int64_t(const std::string& user, const std::string& answer_prefix)>;

struct SampleSpec {
  uint64_t seed = 0;
  int64_t target_tokens = 0;  // the prompt's length at most
  double depth = -1.0;        // depth of the first (queried) needle in [0, 1]; < 0: from the seed
};

// Throws InputError when even an empty haystack does not fit in target_tokens.
TaskPrompt make_task_prompt(TaskKind task, const SampleSpec& spec, const FillerCorpus& corpus,
                            const PromptTokenCounter& count);

// The passkey prompt on the shipped filler (find_filler_dir()), for other tests to call.
TaskPrompt make_passkey_prompt(uint64_t seed, int64_t target_tokens, const PromptTokenCounter& count);

}  // namespace deltainfer::eval
