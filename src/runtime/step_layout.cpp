#include "runtime/step_layout.h"

#include <algorithm>
#include <numeric>

#include "core/error.h"

namespace deltainfer::runtime {
namespace {

// Appends the entry's rows and its slot; returns the slot.
int add_entry(StepLayout& layout, const BatchEntry& entry, const Sequence& sequence) {
  const int slot = layout.slots();
  for (int64_t t = 0; t < entry.n_tokens; ++t) {
    layout.tokens.push_back(entry.tokens[t]);
    layout.positions.push_back(static_cast<int32_t>(sequence.length + t));
    layout.row_slot.push_back(slot);
  }
  if (static_cast<int64_t>(sequence.pages.size()) > layout.page_stride) {
    throw_error("sequence holds {} pages, more than the page table's {} per slot", sequence.pages.size(),
                layout.page_stride);
  }
  std::vector<int32_t> row(static_cast<size_t>(layout.page_stride), 0);
  std::copy(sequence.pages.begin(), sequence.pages.end(), row.begin());
  layout.page_tables.insert(layout.page_tables.end(), row.begin(), row.end());
  layout.kv_lens.push_back(static_cast<int32_t>(sequence.length + entry.n_tokens));
  return slot;
}

}  // namespace

StepLayout layout_step(const BatchPlan& plan, const KvSequences& sequences, int64_t page_stride,
                       const std::function<int(SequenceId)>& method_of) {
  StepLayout layout;
  layout.page_stride = page_stride;
  layout.entry_first_row.assign(plan.entries.size(), 0);
  layout.entry_slot.assign(plan.entries.size(), 0);
  std::vector<size_t> decodes;
  for (size_t e = 0; e < plan.entries.size(); ++e) {
    if (plan.entries[e].decode) decodes.push_back(e);
  }
  std::stable_sort(decodes.begin(), decodes.end(), [&](size_t a, size_t b) {
    return method_of(plan.entries[a].sequence) < method_of(plan.entries[b].sequence);
  });
  for (size_t e : decodes) {
    const BatchEntry& entry = plan.entries[e];
    const int method = method_of(entry.sequence);
    layout.entry_first_row[e] = layout.rows();
    layout.entry_slot[e] = add_entry(layout, entry, sequences.at(entry.sequence));
    if (layout.decode_groups.empty() || layout.decode_groups.back().method != method) {
      layout.decode_groups.push_back({method, layout.entry_slot[e], 0});
    }
    ++layout.decode_groups.back().slots;
  }
  layout.decode_rows = layout.rows();
  for (size_t e = 0; e < plan.entries.size(); ++e) {
    const BatchEntry& entry = plan.entries[e];
    if (entry.decode) continue;
    const Sequence& sequence = sequences.at(entry.sequence);
    PrefillItem item;
    item.entry = e;
    item.method = method_of(entry.sequence);
    item.first_row = layout.rows();
    item.n_tokens = entry.n_tokens;
    item.first_pos = sequence.length;
    item.prompt_end = entry.prompt_end > 0 ? entry.prompt_end : sequence.length + entry.n_tokens;
    item.slot = add_entry(layout, entry, sequence);
    layout.entry_first_row[e] = item.first_row;
    layout.entry_slot[e] = item.slot;
    layout.prefills.push_back(item);
  }
  return layout;
}

int decode_slot_bucket(int slots, int max_slots) {
  if (slots < 1 || slots > max_slots) throw_error("a decode step of {} slots (at most {})", slots, max_slots);
  int bucket = 1;
  while (bucket < slots && bucket < 8) bucket *= 2;
  if (bucket < slots) bucket = (slots + 7) / 8 * 8;
  return std::min(bucket, max_slots);
}

void pad_decode_slots(StepLayout& layout, int slots, int32_t scratch_page) {
  if (!layout.prefills.empty() || layout.decode_groups.size() != 1 || slots < layout.slots()) {
    throw_error("only a pure decode step of one method pads ({} slots to {})", layout.slots(), slots);
  }
  while (layout.slots() < slots) {
    const int slot = layout.slots();
    layout.tokens.push_back(0);
    layout.positions.push_back(0);
    layout.row_slot.push_back(slot);
    std::vector<int32_t> row(static_cast<size_t>(layout.page_stride), 0);
    row.front() = scratch_page;
    layout.page_tables.insert(layout.page_tables.end(), row.begin(), row.end());
    layout.kv_lens.push_back(1);
    ++layout.decode_groups.front().slots;
  }
  layout.decode_rows = layout.rows();
}

}  // namespace deltainfer::runtime
