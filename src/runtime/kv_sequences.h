#pragma once
// KvSequences: the sequences a backend holds, each with its attention method, its KV pages (from
// the shared KvPageAllocator) and its length. Both backends keep one; it validates a BatchPlan and
// gets its pages, all or none, before any work runs.
#include <cstdint>
#include <map>
#include <vector>

#include "attention/attention_config.h"
#include "runtime/batch_plan.h"
#include "runtime/kv_page_allocator.h"

namespace deltainfer::runtime {

struct Sequence {
  attention::AttentionConfig method;
  std::vector<int32_t> pages;  // logical page i (positions i*kKvPageTokens..) -> pool page
  int64_t length = 0;          // positions cached
};

struct KvUsage {
  int64_t page_tokens = kKvPageTokens;
  int32_t total_pages = 0;
  int32_t used_pages = 0;
  int64_t sequences = 0;
};

class KvSequences {
 public:
  // capacity: most positions one sequence may hold; vocab_size: token ids are checked against it.
  KvSequences(int32_t total_pages, int64_t capacity, int32_t vocab_size);

  SequenceId open(const attention::AttentionConfig& method);
  // Releases the sequence's pages; unknown ids are an Error (a bug of the caller).
  void close(SequenceId id);
  bool contains(SequenceId id) const { return sequences_.count(id) != 0; }
  const Sequence& at(SequenceId id) const;
  int64_t capacity() const { return capacity_; }

  // Forgets positions >= length and releases the pages no longer needed.
  void truncate(SequenceId id, int64_t length);
  // The sequence is attended under `method` from now on. InputError when it holds positions and
  // `method` prefills otherwise (runtime::same_prefill): its cached keys would not be the method's.
  void set_method(SequenceId id, const attention::AttentionConfig& method);

  // Checks the plan (known sequences, each at most once, token ids and TokenNlls targets in the
  // vocabulary (targets may be kNoTarget), output buffers for what is asked, decode
  // entries of one token after a prompt, every sequence within capacity, at most `max_tokens` rows
  // in all) and gives each entry's sequence the pages its new positions need. Throws InputError,
  // with nothing allocated, when the pool has too few free pages or a check fails.
  void reserve(const BatchPlan& plan, int64_t max_tokens);
  // After the pass ran: the entries' positions count as cached.
  void commit(const BatchPlan& plan);

  KvUsage usage() const;
  const KvPageAllocator& allocator() const { return allocator_; }

 private:
  Sequence& mutable_at(SequenceId id);
  void check_entry(const BatchEntry& entry) const;
  void check_targets(const BatchEntry& entry) const;

  KvPageAllocator allocator_;
  int64_t capacity_;
  int32_t vocab_size_;
  SequenceId next_id_ = 0;
  std::map<SequenceId, Sequence> sequences_;
};

}  // namespace deltainfer::runtime
