#pragma once
// What the GPU model tests (model_parity_test.cpp, quest_model_selection_test.cpp) share: the
// SmolLM2 model (at $DELTAINFER_MODEL or models/), the prompts and the small Quest config.
#include <cstdlib>
#include <iterator>
#include <string>
#include <vector>

#include "attention/attention_config.h"

namespace deltainfer::model_fixtures {

inline std::string model_path() {
  if (const char* path = std::getenv("DELTAINFER_MODEL")) return path;
  return std::string(DELTAINFER_SOURCE_DIR) + "/models/SmolLM2-135M-Instruct.Q4_1.gguf";
}

inline const char* const kPrompts[] = {
    "The capital of France is",
    "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n",
    "<|im_start|>user\nWhy is the sky blue? Answer in two sentences.<|im_end|>\n<|im_start|>assistant\n",
};

// A shared long context (~310 tokens) in front of each prompt, for the vertical-slash and Quest
// tests: with 64-key blocks a vertical-slash query block skips keys only from row ~192 on (sink,
// previous, own and last block are always kept), so the short prompts alone would run dense.
inline constexpr const char* kLongContext =
    "The harbour town of Elmsworth lies at the mouth of a slow green river. Every morning the fishing "
    "boats leave before sunrise and come back at noon, when the market opens on the stone quay. The baker, "
    "a tall woman called Maren, sells rye bread with caraway seeds, and the children of the school on the "
    "hill buy sweet buns on their way down to the water. In spring the river floods the low meadows, and "
    "the farmers move their sheep to the upper fields behind the old mill. The mill has not ground corn "
    "for forty years; it is now a museum with a collection of clocks, maps and ship models, and its keeper, "
    "an old sailor named Tobias, tells visitors about the storm of 1921, when the lighthouse lamp went out "
    "and three ships ran aground on the northern sandbank. The town council meets on the first Monday of "
    "each month in the hall next to the church. Last year it voted to repair the bridge, to plant lime "
    "trees along the main street and to open a small library in the former post office. The library now "
    "lends books, newspapers and records, and on Thursday evenings a retired teacher reads stories aloud "
    "to anyone who comes. In summer, tourists arrive by train from the capital, walk along the cliffs, "
    "swim in the cold bay and eat grilled mackerel at the tavern by the harbour wall. When autumn comes "
    "the tourists leave, the nights grow long, and the town returns to its quiet rhythm of boats, bread "
    "and weather.\n\n";

inline std::vector<std::string> short_prompts() { return {std::begin(kPrompts), std::end(kPrompts)}; }

inline std::vector<std::string> long_context_prompts() {
  std::vector<std::string> prompts;
  for (const char* prompt : kPrompts) prompts.push_back(std::string(kLongContext) + prompt);
  return prompts;
}

// Dense prefill and Quest decode (pages of 16, budget 32): once a context of 5-20 prompt tokens
// grows past two pages, every KV head of layers >= 2 attends its page with the best key bound plus
// the page being written, and drops the rest (kv_len reaches 37-52 in 32 steps); on the
// long-context prompts that is 2 of ~20-23 pages.
inline attention::AttentionConfig small_quest_config() {
  attention::AttentionConfig quest;
  quest.decode.kind = attention::DecodeKind::Quest;
  quest.decode.budget = 32;
  quest.decode.page = 16;
  return quest;
}

}  // namespace deltainfer::model_fixtures
