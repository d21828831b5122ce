#pragma once
// A Transformer without weights for scheduler tests: each sequence's logits are a hash of the
// tokens it holds, so a sequence gets the same logits whatever else shares its batch (what the
// CPU backend guarantees to 1e-5), and a request's text depends only on its prompt and sampling.
// Pages are accounted by the real KvSequences. Tokens: 256 bytes (letters and space likely) and
// EOS (256). It records every plan, can hold forward() at a gate, can refuse to open sequences
// like the single-sequence CUDA backend, and can choose greedy tokens itself like the CUDA backend
// (BatchEntry::sampling; it refuses temperature > 0 in a batch of several, as that backend does).
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "core/error.h"
#include "runtime/transformer.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/tokenizer.h"

namespace deltainfer::testing {

constexpr int32_t kFakeEos = 256;

inline tokenizer::Tokenizer byte_tokenizer() {
  tokenizer::TokenizerSpec spec;
  spec.source = "bytes";
  for (int b = 0; b < 256; ++b) spec.vocab.push_back(tokenizer::byte_level_spelling(std::string(1, static_cast<char>(b))));
  spec.vocab.push_back("<|end|>");
  spec.added_tokens.push_back({kFakeEos, "<|end|>", true, false, false});
  spec.pre_tokenizer_regexes = tokenizer::pre_tokenizer_regexes(tokenizer::PreTokenizerKind::Gpt2);
  spec.eos_id = kFakeEos;
  return tokenizer::Tokenizer(spec);
}

struct PlanRecord {
  int decodes = 0;
  int64_t prefill_tokens = 0;
  std::vector<runtime::SequenceId> prefilling;
  int logits_entries = 0;  // entries that asked for logits
  int device_tokens = 0;   // entries that asked for a token chosen here
  bool uniform_decodes = true;  // every decode entry asked for the same outputs (graph-friendly)
};

class FakeTransformer final : public runtime::Transformer {
 public:
  FakeTransformer(int64_t capacity, int32_t pages, int64_t max_batch_tokens, bool opens_sequences = true)
      : sequences_(pages, capacity, kFakeEos + 1), max_batch_tokens_(max_batch_tokens), opens_(opens_sequences) {
    config_.vocab_size = kFakeEos + 1;
    default_ = sequences_.open({});
  }

  const model::ModelConfig& config() const override { return config_; }
  int64_t capacity() const override { return sequences_.capacity(); }
  int64_t max_batch_tokens() const override { return max_batch_tokens_; }
  runtime::SequenceId open_sequence(const attention::AttentionConfig& method) override {
    if (!opens_) throw_input_error("this fake backend serves one sequence");
    method.validate();
    return sequences_.open(method);
  }
  void close_sequence(runtime::SequenceId id) override {
    sequences_.close(id);
    history_.erase(id);
  }
  int64_t sequence_length(runtime::SequenceId id) const override { return sequences_.at(id).length; }
  void truncate_sequence(runtime::SequenceId id, int64_t length) override {
    sequences_.truncate(id, length);
    history_[id].resize(static_cast<size_t>(length));
  }
  runtime::KvUsage kv_usage() const override { return sequences_.usage(); }
  runtime::SequenceId default_sequence() const override { return default_; }
  bool samples_on_device() const override { return device_; }
  void choose_greedy_tokens_on_device() { device_ = true; }
  // Each prompt token then takes this long (decode steps take no time), like a real pass whose
  // prompt chunk costs more than its decodes.
  void set_prompt_token_cost(std::chrono::microseconds cost) { prompt_token_cost_ = cost; }

  void forward(const runtime::BatchPlan& plan) override {
    wait_at_gate();
    // Like the CUDA backend: a Δ prefill chunk starts on a multiple of γ.
    for (const runtime::BatchEntry& entry : plan.entries) {
      const runtime::Sequence& sequence = sequences_.at(entry.sequence);
      const attention::PrefillConfig& prefill = sequence.method.prefill;
      if (!entry.decode && prefill.delta && sequence.length % prefill.gamma != 0) {
        throw_input_error("a prefill chunk starts at {}, not a multiple of γ {} (n {} seq {})", sequence.length, prefill.gamma, entry.n_tokens, entry.sequence);
      }
    }
    sequences_.reserve(plan, max_batch_tokens_);
    int64_t prompt_tokens = 0;
    for (const runtime::BatchEntry& entry : plan.entries) prompt_tokens += entry.decode ? 0 : entry.n_tokens;
    std::this_thread::sleep_for(prompt_token_cost_ * prompt_tokens);
    check_sampling(plan);
    PlanRecord record;
    const runtime::BatchEntry* first_decode = nullptr;
    for (const runtime::BatchEntry& entry : plan.entries) {
      std::vector<int32_t>& tokens = history_[entry.sequence];
      tokens.insert(tokens.end(), entry.tokens, entry.tokens + entry.n_tokens);
      if (entry.logits == runtime::LogitsFor::LastToken) write_logits(tokens, entry.logits_out);
      if (entry.sampled != nullptr) *entry.sampled = greedy_token(tokens);
      record.logits_entries += entry.logits != runtime::LogitsFor::None;
      record.device_tokens += entry.sampled != nullptr;
      if (entry.decode) {
        if (first_decode == nullptr) first_decode = &entry;
        record.uniform_decodes = record.uniform_decodes && same_outputs(*first_decode, entry);
        ++record.decodes;
      } else {
        record.prefill_tokens += entry.n_tokens;
        record.prefilling.push_back(entry.sequence);
      }
    }
    sequences_.commit(plan);
    std::lock_guard<std::mutex> lock(mutex_);
    plans_.push_back(record);
  }

  std::vector<PlanRecord> plans() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return plans_;
  }
  // forward() waits while the gate is closed.
  void close_gate() {
    std::lock_guard<std::mutex> lock(mutex_);
    gate_open_ = false;
  }
  void open_gate() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      gate_open_ = true;
    }
    gate_.notify_all();
  }

 private:
  void wait_at_gate() {
    std::unique_lock<std::mutex> lock(mutex_);
    gate_.wait(lock, [&] { return gate_open_; });
  }

  void check_sampling(const runtime::BatchPlan& plan) const {
    for (const runtime::BatchEntry& entry : plan.entries) {
      if (entry.sampling == nullptr) continue;
      if (!device_) throw_error("this fake backend does not sample on a device");
      if (entry.sampling->temperature != 0.0f && plan.entries.size() != 1) {
        throw_error("the device samples (temperature > 0) in batches of one entry");
      }
      if (entry.sampling->temperature != 0.0f) throw_error("this fake backend chooses greedy tokens only");
    }
  }

  static bool same_outputs(const runtime::BatchEntry& a, const runtime::BatchEntry& b) {
    if (a.logits != b.logits || (a.sampling == nullptr) != (b.sampling == nullptr)) return false;
    return a.sampling == nullptr || *a.sampling == *b.sampling;
  }

  static int32_t greedy_token(const std::vector<int32_t>& tokens) {
    std::vector<float> logits(kFakeEos + 1);
    write_logits(tokens, logits.data());
    return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
  }

  // Letters and space get hashed logits in [0, 8); EOS wins about one time in 40; the rest stay low.
  static void write_logits(const std::vector<int32_t>& tokens, float* logits) {
    uint64_t h = 1469598103934665603ull;
    for (int32_t t : tokens) h = (h ^ static_cast<uint64_t>(t)) * 1099511628211ull;
    for (int32_t id = 0; id <= kFakeEos; ++id) {
      const bool likely = (id >= 'a' && id <= 'z') || id == ' ';
      const uint64_t mix = (h ^ (static_cast<uint64_t>(id) * 0x9E3779B97F4A7C15ull)) * 0xBF58476D1CE4E5B9ull;
      const float unit = static_cast<float>(mix >> 40) / static_cast<float>(1ull << 24);
      logits[id] = likely ? 8.0f * unit : -8.0f + unit;
    }
    logits[kFakeEos] = (h % 40 == 0) ? 9.0f : -9.0f;
  }

  model::ModelConfig config_;
  runtime::KvSequences sequences_;
  int64_t max_batch_tokens_;
  bool opens_;
  bool device_ = false;
  std::chrono::microseconds prompt_token_cost_{0};
  runtime::SequenceId default_ = 0;
  std::map<runtime::SequenceId, std::vector<int32_t>> history_;
  mutable std::mutex mutex_;
  std::condition_variable gate_;
  bool gate_open_ = true;
  std::vector<PlanRecord> plans_;
};

}  // namespace deltainfer::testing
