#include "runtime/kv_sequences.h"

#include <set>

#include "core/error.h"
#include "runtime/prefill_identity.h"

namespace deltainfer::runtime {

KvSequences::KvSequences(int32_t total_pages, int64_t capacity, int32_t vocab_size)
    : allocator_(total_pages), capacity_(capacity), vocab_size_(vocab_size) {
  if (capacity <= 0) throw_error("a sequence capacity of {} positions", capacity);
}

SequenceId KvSequences::open(const attention::AttentionConfig& method) {
  const SequenceId id = next_id_++;
  sequences_[id].method = method;
  return id;
}

void KvSequences::close(SequenceId id) {
  Sequence& sequence = mutable_at(id);
  for (int32_t page : sequence.pages) allocator_.release(page);
  sequences_.erase(id);
}

const Sequence& KvSequences::at(SequenceId id) const {
  const auto found = sequences_.find(id);
  if (found == sequences_.end()) throw_error("sequence {} is not open", id);
  return found->second;
}

Sequence& KvSequences::mutable_at(SequenceId id) { return const_cast<Sequence&>(static_cast<const KvSequences&>(*this).at(id)); }

void KvSequences::truncate(SequenceId id, int64_t length) {
  Sequence& sequence = mutable_at(id);
  if (length < 0 || length > sequence.length) {
    throw_error("cannot truncate sequence {} to {} of {} positions", id, length, sequence.length);
  }
  sequence.length = length;
  const size_t keep = static_cast<size_t>(pages_for_positions(length));
  while (sequence.pages.size() > keep) {
    allocator_.release(sequence.pages.back());
    sequence.pages.pop_back();
  }
}

void KvSequences::set_method(SequenceId id, const attention::AttentionConfig& method) {
  Sequence& sequence = mutable_at(id);
  if (sequence.length > 0 && !same_prefill(sequence.method, method)) {
    throw_input_error("sequence {} holds {} positions prefilled as \"{}\"; \"{}\" prefills otherwise "
                      "(truncate it to 0 first)",
                      id, sequence.length, attention::describe(sequence.method), attention::describe(method));
  }
  sequence.method = method;
}

void KvSequences::check_entry(const BatchEntry& entry) const {
  const Sequence& sequence = at(entry.sequence);
  if (entry.n_tokens <= 0 || entry.tokens == nullptr) throw_error("a batch entry of sequence {} has no tokens", entry.sequence);
  if (entry.decode && (entry.n_tokens != 1 || sequence.length == 0)) {
    throw_error("a decode entry of sequence {} must be one token after a prompt", entry.sequence);
  }
  if (sequence.length + entry.n_tokens > capacity_) {
    throw_input_error("sequence of {} tokens does not fit the KV cache of {} positions",
                      sequence.length + entry.n_tokens, capacity_);
  }
  for (int64_t i = 0; i < entry.n_tokens; ++i) {
    if (entry.tokens[i] < 0 || entry.tokens[i] >= vocab_size_) {
      throw_input_error("token id {} is outside the vocabulary (0..{})", entry.tokens[i], vocab_size_ - 1);
    }
  }
  if ((entry.sampling == nullptr) != (entry.sampled == nullptr)) {
    throw_error("a batch entry of sequence {} gives a sampling rule without a token slot or the reverse", entry.sequence);
  }
  if (logit_rows(entry) > 0 && entry.logits_out == nullptr) {
    throw_error("a batch entry of sequence {} asks for logits but gives no buffer", entry.sequence);
  }
  if (entry.logits == LogitsFor::TokenNlls) check_targets(entry);
}

void KvSequences::check_targets(const BatchEntry& entry) const {
  if (entry.targets == nullptr || entry.nlls_out == nullptr) {
    throw_error("a batch entry of sequence {} asks for token NLLs but gives no targets or no buffer", entry.sequence);
  }
  for (int64_t i = 0; i < entry.n_tokens; ++i) {
    if (entry.targets[i] != kNoTarget && (entry.targets[i] < 0 || entry.targets[i] >= vocab_size_)) {
      throw_input_error("target token id {} is outside the vocabulary (0..{})", entry.targets[i], vocab_size_ - 1);
    }
  }
}

void KvSequences::reserve(const BatchPlan& plan, int64_t max_tokens) {
  if (plan.entries.empty()) throw_error("an empty batch");
  if (plan.total_tokens() > max_tokens) {
    throw_input_error("a batch of {} tokens exceeds the {} one forward pass holds", plan.total_tokens(), max_tokens);
  }
  std::set<SequenceId> seen;
  int64_t needed = 0;
  for (const BatchEntry& entry : plan.entries) {
    check_entry(entry);
    if (!seen.insert(entry.sequence).second) throw_error("sequence {} appears twice in one batch", entry.sequence);
    const Sequence& sequence = at(entry.sequence);
    needed += pages_for_positions(sequence.length + entry.n_tokens) - static_cast<int64_t>(sequence.pages.size());
  }
  if (needed > allocator_.free_pages()) {
    throw_input_error("the batch needs {} more KV pages ({} tokens each) but {} of {} are free", needed, kKvPageTokens,
                      allocator_.free_pages(), allocator_.total_pages());
  }
  for (const BatchEntry& entry : plan.entries) {
    Sequence& sequence = mutable_at(entry.sequence);
    const int64_t missing = pages_for_positions(sequence.length + entry.n_tokens) - static_cast<int64_t>(sequence.pages.size());
    if (missing > 0) allocator_.allocate(static_cast<int32_t>(missing), sequence.pages);
  }
}

void KvSequences::commit(const BatchPlan& plan) {
  for (const BatchEntry& entry : plan.entries) mutable_at(entry.sequence).length += entry.n_tokens;
}

KvUsage KvSequences::usage() const {
  KvUsage usage;
  usage.total_pages = allocator_.total_pages();
  usage.used_pages = allocator_.used_pages();
  usage.sequences = static_cast<int64_t>(sequences_.size());
  return usage;
}

}  // namespace deltainfer::runtime
