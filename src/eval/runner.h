#pragma once
// run_eval: every method on the same samples. The samples (prompts and expected answers) are made
// once, from seeds, with the model's tokenizer; then for each method and length an engine with
// that attention policy and a KV cache of that length answers every sample greedily, and the
// answers are scored. Perplexity, when asked for, scores the same text under every method, on
// key tokens chosen once by the dense model (perplexity.h).
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "attention/attention_config.h"
#include "engine/engine.h"
#include "eval/filler_corpus.h"
#include "eval/method_spec.h"
#include "eval/report.h"
#include "eval/tasks.h"

namespace deltainfer::eval {

struct EvalPlan {
  std::vector<TaskKind> tasks;
  std::vector<int64_t> lengths;  // total tokens: prompt plus the answer budget
  int samples = 50;              // per task and length
  uint64_t seed = 0;
  std::vector<MethodSpec> methods;
  // Perplexity over `perplexity_texts` windows of `length` tokens of real prose per length.
  bool perplexity = false;
  int perplexity_texts = 2;
  int64_t longppl_short_context = 0;  // K of LongPPL; 0: length / 8 (the paper's 4K of 32K)
  int64_t decode_tail = 256;     // last tokens of each window fed through the decode path
  int64_t prefill_chunk = 512;
  // Instrument every method (CPU backend only): per-layer cosine vs dense, attended tokens, recall.
  // Runs the sequential path (one sample at a time, one prefill per method).
  bool fidelity = false;
  // Samples of one length answered together (batched_answers.h); the engine's KV pool holds this
  // many sequences of the length.
  int batch = 1;
  // Methods that prefill alike answer from one prefill of each prompt (prefill_groups.h).
  // false with batch 1: the sequential path, an engine per method answering through
  // engine::generate.
  bool share_prefill = true;
};

// Opens an engine whose attention is `attention`, whose sequences hold `context` positions each,
// and whose KV pool serves `max_batch` of them at once.
using EngineOpener =
    std::function<engine::Engine(const attention::AttentionConfig& attention, int64_t context, int max_batch)>;

// Called with the results so far, so that a long run can be saved as it goes: after each method
// on the sequential path, after each prefill group at each length on the batched one (the report
// then holds every method's finished lengths, in the sequential path's order).
using EvalCheckpoint = std::function<void(const EvalReport& partial)>;

// Throws InputError for a plan that cannot run (no task, a length the model cannot hold, a method
// that is invalid at some length, a batch below 1) before any sample is generated. Both paths give
// the same answers; the samples are listed method by method, length by length, as the sequential
// path answers them.
EvalReport run_eval(const EvalPlan& plan, const FillerCorpus& corpus, const std::string& filler_dir,
                    const EngineOpener& open, const EvalCheckpoint& checkpoint = {});

// The seed of sample `index` of a task at a length: independent of the methods, so that every
// method answers the same prompts.
uint64_t sample_seed(uint64_t run_seed, TaskKind task, int64_t length, int index);

}  // namespace deltainfer::eval
