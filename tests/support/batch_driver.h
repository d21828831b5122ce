#pragma once
// Drives the batch-equivalence tests of both backends (tests/model, tests/gpu): each workload run
// alone (its own one-entry batches), then all of them in shared batches where sequences join at
// their step, feed prompt chunks beside other sequences' decode steps, and leave when done. The
// batched run is fed the alone run's greedy tokens, so a near-tie cannot make the runs diverge.
#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

#include "attention/attention_config.h"
#include "engine/sampler.h"
#include "runtime/transformer.h"

namespace deltainfer::testing {

// Sparse methods small enough to run sparse on short prompts: sliding window 64 + sink 4 with Δ
// (γ 16, dense tail 16); sparse decodes over budgets of 128 in pages of 16 (recency 32, window 96).
inline attention::AttentionConfig small_sliding_delta() {
  attention::AttentionConfig config;
  config.prefill.kind = attention::PrefillKind::Sliding;
  config.prefill.delta = true;
  config.prefill.gamma = 16;
  config.prefill.dense_tail = 16;
  config.window = 64;
  config.sink = 4;
  return config;
}

inline attention::AttentionConfig small_sparse_decode(attention::DecodeKind kind,
                                                      attention::AttentionConfig config = {}) {
  config.decode.kind = kind;
  config.decode.budget = 128;
  config.decode.page = 16;
  config.decode.recency = 32;
  if (kind == attention::DecodeKind::Streaming) {
    config.window = 96;
    config.sink = 4;
  }
  return config;
}

inline std::vector<int32_t> random_prompt(std::mt19937& rng, int64_t n, int32_t vocab) {
  std::vector<int32_t> tokens(static_cast<size_t>(n));
  for (int32_t& t : tokens) t = static_cast<int32_t>(rng() % static_cast<uint32_t>(vocab));
  return tokens;
}

struct Workload {
  std::vector<int32_t> prompt;
  attention::AttentionConfig method;
  int join_step = 0;     // the batched run's step at which the sequence arrives
  int decode_steps = 0;  // decode steps after the prompt; it leaves after the last
};

// Logits after the prompt and after each decode step (and, alone, the greedy tokens).
struct SequenceRun {
  std::vector<std::vector<float>> logits;
  std::vector<int32_t> greedy;
};

inline SequenceRun run_alone(runtime::Transformer& model, const Workload& w, int64_t chunk) {
  const size_t vocab = static_cast<size_t>(model.config().vocab_size);
  const runtime::SequenceId id = model.open_sequence(w.method);
  const int64_t n = static_cast<int64_t>(w.prompt.size());
  std::vector<float> logits(vocab);
  for (int64_t start = 0; start < n; start += chunk) {
    model.forward(runtime::BatchPlan{
        {runtime::prefill_entry(id, w.prompt.data() + start, std::min(chunk, n - start), n, logits.data())}});
  }
  SequenceRun run;
  run.logits.push_back(logits);
  for (int step = 0; step < w.decode_steps; ++step) {
    run.greedy.push_back(engine::argmax(logits.data(), static_cast<int32_t>(vocab)));
    model.forward(runtime::BatchPlan{{runtime::decode_entry(id, &run.greedy.back(), logits.data())}});
    run.logits.push_back(logits);
  }
  model.close_sequence(id);
  return run;
}

struct BatchedRuns {
  std::vector<SequenceRun> sequences;
  int mixed_steps = 0;  // steps that held prefill chunks and decode steps together
};

inline BatchedRuns run_batched(runtime::Transformer& model, const std::vector<Workload>& work,
                               const std::vector<SequenceRun>& alone, int64_t chunk) {
  struct Live {
    runtime::SequenceId id = -1;
    int64_t prompt_done = 0;
    int decodes_done = 0;
    bool finished = false;
    std::vector<float> buffer;
  };
  const size_t vocab = static_cast<size_t>(model.config().vocab_size);
  std::vector<Live> live(work.size());
  BatchedRuns runs;
  runs.sequences.resize(work.size());
  for (int step = 0; std::any_of(live.begin(), live.end(), [](const Live& l) { return !l.finished; }); ++step) {
    // As a scheduler would: every running decode first, then prompt chunks while the pass has
    // room for them (a chunk that does not fit waits for a later step).
    runtime::BatchPlan plan;
    std::vector<size_t> members;
    int64_t room = model.max_batch_tokens();
    for (int pass = 0; pass < 2; ++pass) {
      for (size_t s = 0; s < work.size(); ++s) {
        Live& l = live[s];
        const int64_t n = static_cast<int64_t>(work[s].prompt.size());
        if (l.finished || work[s].join_step > step || (l.prompt_done < n) != (pass == 1)) continue;
        if (l.id < 0) {
          l.id = model.open_sequence(work[s].method);
          l.buffer.resize(vocab);
        }
        if (pass == 1) {
          const int64_t count = std::min(chunk, n - l.prompt_done);
          if (count > room) continue;
          plan.entries.push_back(
              runtime::prefill_entry(l.id, work[s].prompt.data() + l.prompt_done, count, n, l.buffer.data()));
          l.prompt_done += count;
          room -= count;
        } else {
          const int32_t* token = &alone[s].greedy[static_cast<size_t>(l.decodes_done)];
          plan.entries.push_back(runtime::decode_entry(l.id, token, l.buffer.data()));
          ++l.decodes_done;
          --room;
        }
        members.push_back(s);
      }
    }
    if (plan.entries.empty()) continue;
    const auto is_decode = [](const runtime::BatchEntry& e) { return e.decode; };
    runs.mixed_steps += std::any_of(plan.entries.begin(), plan.entries.end(), is_decode) &&
                        !std::all_of(plan.entries.begin(), plan.entries.end(), is_decode);
    model.forward(plan);
    for (size_t s : members) {
      Live& l = live[s];
      if (l.prompt_done < static_cast<int64_t>(work[s].prompt.size())) continue;  // mid-prompt: no logits yet
      runs.sequences[s].logits.push_back(l.buffer);
      if (l.decodes_done == work[s].decode_steps) {  // leaves between steps
        model.close_sequence(l.id);
        l.finished = true;
      }
    }
  }
  return runs;
}

}  // namespace deltainfer::testing
