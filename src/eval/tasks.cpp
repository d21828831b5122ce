#include "eval/tasks.h"

#include <algorithm>
#include <array>
#include <cmath>

#include "core/error.h"
#include "eval/needle_words.h"
#include "eval/seeded_random.h"

namespace deltainfer::eval {
namespace {

// A task before its haystack is sized: the needles in the order they must appear (when ordered)
// and the text around the haystack.
struct TaskLayout {
  std::string instruction;
  std::vector<std::string> needles;
  std::vector<double> depths;
  std::string question;
  std::string answer_prefix;
  std::vector<std::string> expected;
};

constexpr int kNeedleDigits = 7;   // RULER's values
constexpr int kPasskeyDigits = 5;  // the passkey test of Mohtashami & Jaggi
constexpr int kMultiNeedles = 4;   // RULER's num_needle_k / num_needle_v / num_needle_q
constexpr int kVariableHops = 4;   // RULER's vt: one chain, four hops

struct TaskInfo {
  TaskKind kind;
  const char* name;
  int64_t answer_tokens;
};
constexpr std::array<TaskInfo, 6> kTasks = {{{TaskKind::Passkey, "passkey", 16},
                                             {TaskKind::NiahSingle, "niah_single", 24},
                                             {TaskKind::NiahMultiKey, "niah_multikey", 24},
                                             {TaskKind::NiahMultiValue, "niah_multivalue", 64},
                                             {TaskKind::NiahMultiQuery, "niah_multiquery", 64},
                                             {TaskKind::VariableTracking, "vt", 40}}};

const TaskInfo& info(TaskKind task) {
  for (const TaskInfo& t : kTasks) {
    if (t.kind == task) return t;
  }
  throw_error("unknown task kind {}", static_cast<int>(task));
}

std::string niah_needle(const std::string& key, const std::string& value) {
  return "One of the special magic numbers for " + key + " is: " + value + ".";
}

const char* kNiahInstruction =
    "Some special magic numbers are hidden within the following text. Make sure to memorize them. "
    "I will quiz you about the numbers afterwards.";

// First needle at the requested depth, the others anywhere.
std::vector<double> needle_depths(SeededRandom& random, const SampleSpec& spec, size_t count) {
  std::vector<double> depths(count);
  for (double& d : depths) d = random.unit();
  if (spec.depth >= 0.0) depths[0] = std::min(spec.depth, 1.0);
  return depths;
}

std::vector<std::string> distinct_keys(SeededRandom& random, size_t count) {
  std::vector<std::string> keys;
  while (keys.size() < count) {
    std::string key = random_needle_key(random);
    if (std::find(keys.begin(), keys.end(), key) == keys.end()) keys.push_back(std::move(key));
  }
  return keys;
}

std::vector<std::string> distinct_numbers(SeededRandom& random, size_t count, int digits) {
  std::vector<std::string> values;
  while (values.size() < count) {
    std::string value = random_number(random, digits);
    if (std::find(values.begin(), values.end(), value) == values.end()) values.push_back(std::move(value));
  }
  return values;
}

std::string join_keys(const std::vector<std::string>& keys) {
  std::string out;
  for (size_t i = 0; i < keys.size(); ++i) {
    if (i > 0) out += (i + 1 == keys.size()) ? (keys.size() > 2 ? ", and " : " and ") : ", ";
    out += keys[i];
  }
  return out;
}

TaskLayout passkey_layout(SeededRandom& random, const SampleSpec& spec) {
  const std::string key = random_number(random, kPasskeyDigits);
  TaskLayout t;
  t.instruction = "There is an important piece of information hidden inside a lot of irrelevant text. "
                  "Find it and memorize it. I will quiz you about the important information there.";
  t.needles = {"The pass key is " + key + ". Remember it. " + key + " is the pass key."};
  t.depths = needle_depths(random, spec, 1);
  // "number only": without it the 135M model tends to go on with a story after the prefix.
  t.question = "What is the pass key? Answer with the number only.";
  t.answer_prefix = "The pass key is";
  t.expected = {key};
  return t;
}

// Single: one needle. Multi-key: the queried needle among kMultiNeedles - 1 distractors with
// other keys.
TaskLayout niah_keyed_layout(SeededRandom& random, const SampleSpec& spec, size_t needle_count) {
  const std::vector<std::string> keys = distinct_keys(random, needle_count);
  const std::vector<std::string> values = distinct_numbers(random, needle_count, kNeedleDigits);
  TaskLayout t;
  t.instruction = kNiahInstruction;
  for (size_t i = 0; i < needle_count; ++i) t.needles.push_back(niah_needle(keys[i], values[i]));
  t.depths = needle_depths(random, spec, needle_count);
  t.question = "What is the special magic number for " + keys[0] + " mentioned in the provided text?";
  t.answer_prefix = "The special magic number for " + keys[0] + " mentioned in the provided text is";
  t.expected = {values[0]};
  return t;
}

TaskLayout niah_multivalue_layout(SeededRandom& random, const SampleSpec& spec) {
  const std::string key = random_needle_key(random);
  const std::vector<std::string> values = distinct_numbers(random, kMultiNeedles, kNeedleDigits);
  TaskLayout t;
  t.instruction = kNiahInstruction;
  for (const std::string& value : values) t.needles.push_back(niah_needle(key, value));
  t.depths = needle_depths(random, spec, kMultiNeedles);
  t.question = "What are all the special magic numbers for " + key + " mentioned in the provided text?";
  t.answer_prefix = "The special magic numbers for " + key + " mentioned in the provided text are";
  t.expected = values;
  return t;
}

TaskLayout niah_multiquery_layout(SeededRandom& random, const SampleSpec& spec) {
  const std::vector<std::string> keys = distinct_keys(random, kMultiNeedles);
  const std::vector<std::string> values = distinct_numbers(random, kMultiNeedles, kNeedleDigits);
  TaskLayout t;
  t.instruction = kNiahInstruction;
  for (size_t i = 0; i < keys.size(); ++i) t.needles.push_back(niah_needle(keys[i], values[i]));
  t.depths = needle_depths(random, spec, kMultiNeedles);
  t.question = "What are all the special magic numbers for " + join_keys(keys) + " mentioned in the provided text?";
  t.answer_prefix = "The special magic numbers for " + join_keys(keys) + " mentioned in the provided text are";
  t.expected = values;
  return t;
}

// One chain VAR A = 12345, VAR B = VAR A, ... in reading order; the answer names every variable.
TaskLayout variable_tracking_layout(SeededRandom& random, const SampleSpec& spec) {
  std::vector<std::string> names;
  while (names.size() < static_cast<size_t>(kVariableHops + 1)) {
    std::string name = random_variable_name(random, 5);
    if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(std::move(name));
  }
  const std::string value = random_number(random, 5);
  TaskLayout t;
  t.instruction = "Memorize and track the chain of variable assignments hidden in the following text.";
  t.needles.push_back("VAR " + names[0] + " = " + value + ".");
  for (size_t i = 1; i < names.size(); ++i) t.needles.push_back("VAR " + names[i] + " = VAR " + names[i - 1] + ".");
  t.depths = needle_depths(random, spec, names.size());
  std::sort(t.depths.begin(), t.depths.end());  // a variable is assigned before it is read
  t.question = "Question: Find all variables that are assigned the value " + value + " in the text above.";
  t.answer_prefix = "Answer: According to the chain of variable assignments in the text above, " +
                    std::to_string(names.size()) + " variables are assigned the value " + value + ", they are:";
  t.expected = names;
  return t;
}

TaskLayout layout_for(TaskKind task, SeededRandom& random, const SampleSpec& spec) {
  switch (task) {
    case TaskKind::Passkey: return passkey_layout(random, spec);
    case TaskKind::NiahSingle: return niah_keyed_layout(random, spec, 1);
    case TaskKind::NiahMultiKey: return niah_keyed_layout(random, spec, kMultiNeedles);
    case TaskKind::NiahMultiValue: return niah_multivalue_layout(random, spec);
    case TaskKind::NiahMultiQuery: return niah_multiquery_layout(random, spec);
    case TaskKind::VariableTracking: return variable_tracking_layout(random, spec);
  }
  throw_error("unknown task kind {}", static_cast<int>(task));
}

// The user turn with `sentence_count` filler sentences from `first`; needle k goes before the
// sentence at round(depth_k * sentence_count), needles at one spot in layout order.
std::string render_user(const TaskLayout& t, const FillerCorpus& corpus, size_t first, size_t sentence_count) {
  std::vector<std::pair<size_t, size_t>> slots;  // (sentence position, needle index)
  for (size_t k = 0; k < t.needles.size(); ++k) {
    slots.emplace_back(static_cast<size_t>(std::lround(t.depths[k] * static_cast<double>(sentence_count))), k);
  }
  std::sort(slots.begin(), slots.end());
  std::string haystack;
  size_t next_slot = 0;
  const std::vector<std::string_view> sentences = corpus.run(first, sentence_count);
  for (size_t i = 0; i <= sentences.size(); ++i) {
    for (; next_slot < slots.size() && slots[next_slot].first == i; ++next_slot) {
      haystack += t.needles[slots[next_slot].second];
      haystack += ' ';
    }
    if (i < sentences.size()) haystack += sentences[i];
  }
  while (!haystack.empty() && (haystack.back() == ' ' || haystack.back() == '\n')) haystack.pop_back();
  return t.instruction + "\n\n" + haystack + "\n\n" + t.question;
}

}  // namespace

const char* task_name(TaskKind task) { return info(task).name; }

TaskKind parse_task(std::string_view name) {
  std::string names;
  for (const TaskInfo& t : kTasks) {
    if (name == t.name) return t.kind;
    names += names.empty() ? "" : ", ";
    names += t.name;
  }
  throw_input_error("unknown task '{}' (known: {})", name, names);
}

std::vector<TaskKind> all_tasks() {
  std::vector<TaskKind> tasks;
  for (const TaskInfo& t : kTasks) tasks.push_back(t.kind);
  return tasks;
}

int64_t answer_token_budget(TaskKind task) { return info(task).answer_tokens; }

TaskPrompt make_task_prompt(TaskKind task, const SampleSpec& spec, const FillerCorpus& corpus,
                            const PromptTokenCounter& count) {
  SeededRandom random(spec.seed);
  const TaskLayout layout = layout_for(task, random, spec);
  const size_t first = random.below(corpus.sentences().size());
  auto tokens_with = [&](size_t sentences) { return count(render_user(layout, corpus, first, sentences), layout.answer_prefix); };
  if (tokens_with(0) > spec.target_tokens) {
    throw_input_error("task {}: {} tokens cannot hold even the instruction, needles and question ({} tokens)",
                      task_name(task), spec.target_tokens, tokens_with(0));
  }
  // The largest sentence count that fits: double until it overflows, then bisect.
  size_t fits = 0;
  size_t overflows = 16;
  while (tokens_with(overflows) <= spec.target_tokens) {
    fits = overflows;
    overflows *= 2;
  }
  while (overflows - fits > 1) {
    const size_t middle = fits + (overflows - fits) / 2;
    (tokens_with(middle) <= spec.target_tokens ? fits : overflows) = middle;
  }
  TaskPrompt prompt;
  prompt.user = render_user(layout, corpus, first, fits);
  prompt.answer_prefix = layout.answer_prefix;
  prompt.expected = layout.expected;
  prompt.prompt_tokens = count(prompt.user, prompt.answer_prefix);
  prompt.depths = layout.depths;
  return prompt;
}

TaskPrompt make_passkey_prompt(uint64_t seed, int64_t target_tokens, const PromptTokenCounter& count) {
  static const FillerCorpus corpus = FillerCorpus::load(find_filler_dir());
  return make_task_prompt(TaskKind::Passkey, SampleSpec{seed, target_tokens, -1.0}, corpus, count);
}

}  // namespace deltainfer::eval
