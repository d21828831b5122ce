#include "eval/batched_answers.h"

#include <algorithm>
#include <chrono>
#include <optional>

#include "core/error.h"
#include "engine/sampler.h"
#include "eval/answer_stream.h"
#include "runtime/prefill_identity.h"

namespace deltainfer::eval {
namespace {

using Clock = std::chrono::steady_clock;

struct Slot {
  size_t job = 0;
  runtime::SequenceId sequence = -1;
  int64_t prompt_done = 0;
  int32_t first_token = -1;  // after the prompt: the same under every method of the group
  int32_t next = -1;         // fed at the next decode step
  int32_t chosen = -1;       // the device's greedy token of the latest pass
  std::vector<float> logits;
  std::optional<AnswerStream> answer;
  double prefill_seconds = 0.0;
  double decode_seconds = 0.0;
};

// One wave of up to `batch` jobs through the prefill and every method's decode.
class Wave {
 public:
  Wave(runtime::Transformer& model, const tokenizer::Tokenizer& tokenizer, const std::vector<int32_t>& stop_ids)
      : model_(model), tokenizer_(tokenizer), stop_ids_(stop_ids) {}

  void open(const std::vector<AnswerJob>& jobs, size_t first, size_t count, const attention::AttentionConfig& method) {
    jobs_ = &jobs;
    slots_.clear();
    slots_.resize(count);
    for (size_t i = 0; i < count; ++i) {
      slots_[i].job = first + i;
      slots_[i].sequence = model_.open_sequence(method);
    }
  }

  void close() {
    for (Slot& slot : slots_) model_.close_sequence(slot.sequence);
    slots_.clear();
  }

  // Reads every prompt; each slot's first token comes from its last chunk.
  void prefill() {
    const int64_t chunk = std::max<int64_t>(1, model_.prefill_chunk());
    while (true) {
      runtime::BatchPlan plan;
      std::vector<Slot*> members;
      int64_t room = model_.max_batch_tokens();
      for (Slot& slot : slots_) {
        const std::vector<int32_t>& prompt = prompt_of(slot);
        const auto total = static_cast<int64_t>(prompt.size());
        const int64_t count = std::min(chunk, total - slot.prompt_done);
        if (count <= 0 || count > room) continue;
        const bool last = slot.prompt_done + count == total;
        plan.entries.push_back(runtime::prefill_entry(slot.sequence, prompt.data() + slot.prompt_done, count, total,
                                                      last && !on_device() ? logits_of(slot) : nullptr));
        if (last) choose_on_device(plan.entries.back(), slot);
        members.push_back(&slot);
        room -= count;
        // One chunk per pass: the CPU's GEMMs round a row differently beside other rows (f32
        // panels of another height), which changed StreamingLLM answers on SmolLM2; alone, a
        // chunk's arithmetic is the sequential path's. Prompts still share nothing but the engine.
        break;
      }
      if (members.empty()) return;
      run_pass(plan, members, &Slot::prefill_seconds);
      for (size_t i = 0; i < members.size(); ++i) {
        Slot& slot = *members[i];
        slot.prompt_done += plan.entries[i].n_tokens;
        if (slot.prompt_done == static_cast<int64_t>(prompt_of(slot).size())) slot.first_token = chosen(slot);
      }
    }
  }

  // Every slot's answer under `method`, from its prompt's first token on.
  void decode(const attention::AttentionConfig& method, bool switch_method, std::vector<BatchedAnswer>& answers) {
    std::vector<Slot*> active;
    for (Slot& slot : slots_) {
      const auto prompt_length = static_cast<int64_t>(prompt_of(slot).size());
      if (switch_method) {
        model_.truncate_sequence(slot.sequence, prompt_length);
        model_.set_sequence_method(slot.sequence, method);
      }
      slot.decode_seconds = 0.0;
      slot.answer.emplace(stop_ids_, (*jobs_)[slot.job].max_tokens);
      if (accept(slot, slot.first_token)) active.push_back(&slot);
    }
    while (!active.empty()) {
      runtime::BatchPlan plan;
      for (Slot* slot : active) {
        plan.entries.push_back(runtime::decode_entry(slot->sequence, &slot->next, on_device() ? nullptr : logits_of(*slot)));
        choose_on_device(plan.entries.back(), *slot);
      }
      run_pass(plan, active, &Slot::decode_seconds);
      std::vector<Slot*> still;
      for (Slot* slot : active) {
        if (accept(*slot, chosen(*slot))) still.push_back(slot);
      }
      active.swap(still);
    }
    for (const Slot& slot : slots_) {
      answers[slot.job] = {slot.answer->text(), slot.answer->generated_tokens(), slot.prefill_seconds,
                           slot.decode_seconds};
    }
  }

 private:
  const std::vector<int32_t>& prompt_of(const Slot& slot) const { return *(*jobs_)[slot.job].prompt; }
  bool on_device() const { return model_.samples_on_device(); }

  float* logits_of(Slot& slot) const {
    slot.logits.resize(static_cast<size_t>(model_.config().vocab_size));
    return slot.logits.data();
  }

  // Greedy, as engine::generate at temperature 0: on the device where the backend chooses there,
  // else the argmax of the logits (engine::Sampler at temperature 0).
  void choose_on_device(runtime::BatchEntry& entry, Slot& slot) const {
    if (!on_device()) return;
    entry.sampling = &greedy_;
    entry.sampled = &slot.chosen;
  }

  int32_t chosen(const Slot& slot) const {
    return on_device() ? slot.chosen : engine::argmax(slot.logits.data(), model_.config().vocab_size);
  }

  // Feeds `token` to the slot's answer; true when it is to be decoded next.
  bool accept(Slot& slot, int32_t token) {
    slot.next = token;
    return slot.answer->push(token, tokenizer_.token_bytes(token), model_.sequence_length(slot.sequence),
                             model_.capacity());
  }

  void run_pass(const runtime::BatchPlan& plan, const std::vector<Slot*>& members, double Slot::*seconds) {
    const auto start = Clock::now();
    model_.forward(plan);
    const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    const auto total = static_cast<double>(plan.total_tokens());
    for (size_t i = 0; i < members.size(); ++i) {
      members[i]->*seconds += elapsed * static_cast<double>(plan.entries[i].n_tokens) / total;
    }
  }

  runtime::Transformer& model_;
  const tokenizer::Tokenizer& tokenizer_;
  const std::vector<int32_t>& stop_ids_;
  const std::vector<AnswerJob>* jobs_ = nullptr;
  std::vector<Slot> slots_;
  const runtime::DeviceSampling greedy_{};
};

}  // namespace

std::vector<std::vector<BatchedAnswer>> answer_in_batches(runtime::Transformer& model,
                                                          const tokenizer::Tokenizer& tokenizer,
                                                          const std::vector<attention::AttentionConfig>& methods,
                                                          const std::vector<AnswerJob>& jobs, int batch) {
  if (batch < 1) throw_input_error("--batch must be >= 1 (got {})", batch);
  if (methods.empty()) throw_error("answer_in_batches: no method");
  for (size_t m = 1; m < methods.size(); ++m) {
    const attention::AttentionConfig& method = methods[m];
    if (!runtime::same_prefill(methods.front(), method)) {
      throw_error("answer_in_batches: \"{}\" and \"{}\" prefill differently", attention::describe(methods.front()),
                  attention::describe(method));
    }
  }
  std::vector<std::vector<BatchedAnswer>> answers(methods.size(), std::vector<BatchedAnswer>(jobs.size()));
  const std::vector<int32_t> stop_ids = tokenizer.stop_ids();
  Wave wave(model, tokenizer, stop_ids);
  for (size_t first = 0; first < jobs.size(); first += static_cast<size_t>(batch)) {
    wave.open(jobs, first, std::min(jobs.size() - first, static_cast<size_t>(batch)), methods.front());
    try {
      wave.prefill();
      for (size_t m = 0; m < methods.size(); ++m) wave.decode(methods[m], m > 0, answers[m]);
    } catch (...) {
      wave.close();
      throw;
    }
    wave.close();
  }
  return answers;
}

}  // namespace deltainfer::eval
