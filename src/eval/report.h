#pragma once
// The results of `deltainfer eval`: every sample's answer and score, per-cell summaries
// (task × length × method), perplexity, written as JSON (read back by scripts/plot) and as
// markdown tables.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "eval/method_config.h"
#include "eval/tasks.h"

namespace deltainfer::eval {

struct SampleOutcome {
  std::string task;
  int64_t length = 0;
  std::string method;
  int index = 0;
  uint64_t seed = 0;
  double depth = 0.0;  // of the first needle
  int64_t prompt_tokens = 0;
  std::vector<std::string> expected;
  std::string answer;
  double score = 0.0;  // string_match_all, 0..1
  // Sequential path (--batch 1 --no-share-prefill): this sample's own prefill and decode time.
  // Batched path: each forward pass's time shared out over its entries by their tokens; the
  // prefill share is counted in full by every method of the sample's prefill group, which read
  // the prompt once (so summing prefill_seconds over methods overstates the run's time).
  double prefill_seconds = 0.0;
  double decode_seconds = 0.0;
  int64_t generated_tokens = 0;
};

// What a method costs at one length, from its configuration (method_config.h).
struct MethodAtLength {
  std::string method;
  int64_t length = 0;
  std::string description;  // attention::describe()
  AttendedShare attended;
  int64_t budget_tokens = 0;  // keys a sparse query attends to; 0 for dense
};

struct PerplexityOutcome {
  std::string method;
  int64_t length = 0;
  std::string text;           // e.g. "lcet10.txt@0"
  double ppl = 0.0;           // over every scored token
  double ppl_decode = 0.0;    // over the teacher-forced decode tail only
  double longppl = 0.0;       // over the key tokens
  int64_t scored_tokens = 0;
  int64_t key_tokens = 0;
};

// Per-layer attention fidelity of a method at a length, summed over all its samples (on CUDA: prefill only).
struct MethodFidelity {
  std::string method;
  int64_t length = 0;
  nlohmann::json layers;  // attention::FidelityReport::to_json()
};

struct CellSummary {
  std::string task;
  int64_t length = 0;
  std::string method;
  int samples = 0;
  double accuracy = 0.0;  // mean score × 100
  double mean_prompt_tokens = 0.0;
  double prefill_tokens_per_second = 0.0;
  double decode_tokens_per_second = 0.0;
};

struct EvalReport {
  nlohmann::json run;  // model, backend, command, seeds: how to reproduce
  std::vector<std::string> methods;  // labels, in the order given
  std::vector<int64_t> lengths;
  std::vector<std::string> tasks;
  std::vector<MethodAtLength> costs;
  std::vector<SampleOutcome> samples;
  std::vector<PerplexityOutcome> perplexity;
  std::vector<MethodFidelity> fidelity;
};

std::vector<CellSummary> summarize(const EvalReport& report);
nlohmann::json to_json(const EvalReport& report);
// Accuracy per task × length × method (with the mean over tasks), then cost per method × length,
// then perplexity when measured.
std::string markdown_tables(const EvalReport& report);

}  // namespace deltainfer::eval
