#pragma once
// StepLayout: how one BatchPlan is laid out for a backend that runs it in a few launches. Rows:
// the decode steps first, grouped by attention method (each group is one batched decode call),
// then the prefill chunks (the CUDA backend runs those of dense-prefill sequences in one varlen
// launch, the others one call each). Every entry gets a slot: its row of the
// page table and its KV length after the step. Pure bookkeeping (no device code), so the layout
// a GPU pass uses is tested on the CPU.
#include <cstdint>
#include <functional>
#include <vector>

#include "runtime/batch_plan.h"
#include "runtime/kv_sequences.h"

namespace deltainfer::runtime {

// Decode rows [first_slot, first_slot + slots) share one method (slot s is row s).
struct DecodeGroup {
  int method = 0;
  int first_slot = 0;
  int slots = 0;
};

struct PrefillItem {
  size_t entry = 0;     // index in the plan
  int slot = 0;
  int method = 0;
  int64_t first_row = 0;
  int64_t n_tokens = 0;
  int64_t first_pos = 0;
  int64_t prompt_end = 0;
};

struct StepLayout {
  std::vector<int32_t> tokens, positions, row_slot;  // per row
  std::vector<int32_t> page_tables;                  // [slots][page_stride] (0 past a sequence's pages)
  std::vector<int32_t> kv_lens;                      // per slot
  std::vector<DecodeGroup> decode_groups;
  std::vector<PrefillItem> prefills;
  std::vector<int64_t> entry_first_row;  // per plan entry
  std::vector<int> entry_slot;           // per plan entry
  int64_t page_stride = 0;
  int64_t decode_rows = 0;

  int64_t rows() const { return static_cast<int64_t>(tokens.size()); }
  int slots() const { return static_cast<int>(kv_lens.size()); }
};

// `method_of` names the method group of a sequence (any small integer). The sequences' pages must
// already be reserved for the plan (KvSequences::reserve) and their lengths not yet committed.
StepLayout layout_step(const BatchPlan& plan, const KvSequences& sequences, int64_t page_stride,
                       const std::function<int(SequenceId)>& method_of);

// The slot count a decode step of `slots` sequences is padded to, so that one captured graph
// serves every batch size of its bucket: powers of two up to 8, then multiples of 8, never past
// max_slots (for a max batch of 64: 11 buckets instead of 64 sizes).
int decode_slot_bucket(int slots, int max_slots);

// Pads a pure decode step of one method to `slots` slots with idle rows: token 0 at position 0
// of a sequence of one key whose only page is `scratch_page` (a page of the pool that no
// sequence owns, so their KV append and attention touch nobody's keys). Their outputs are never
// handed back: entry_slot and entry_first_row keep naming only the plan's entries.
void pad_decode_slots(StepLayout& layout, int slots, int32_t scratch_page);

}  // namespace deltainfer::runtime
