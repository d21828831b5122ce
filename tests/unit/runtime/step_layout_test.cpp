#include "runtime/step_layout.h"

#include <gtest/gtest.h>

#include <set>

#include "core/error.h"

namespace deltainfer::runtime {
namespace {

// Three sequences: a decode of method 1, a prefill chunk, a decode of method 0.
TEST(StepLayout, DecodesFirstGroupedByMethodThenPrefills) {
  KvSequences sequences(20, 1000, 100);
  const SequenceId a = sequences.open({}), b = sequences.open({}), c = sequences.open({});
  const std::vector<int32_t> prompt_a(70, 1), prompt_c(5, 2), chunk_b(3, 9);
  sequences.reserve(BatchPlan{{prefill_entry(a, prompt_a.data(), 70, 0), prefill_entry(c, prompt_c.data(), 5, 0)}}, 1000);
  sequences.commit(BatchPlan{{prefill_entry(a, prompt_a.data(), 70, 0), prefill_entry(c, prompt_c.data(), 5, 0)}});
  const int32_t ta = 7, tc = 8;
  const BatchPlan plan{{decode_entry(a, &ta), prefill_entry(b, chunk_b.data(), 3, 10), decode_entry(c, &tc)}};
  sequences.reserve(plan, 1000);
  const StepLayout layout = layout_step(plan, sequences, 4, [&](SequenceId id) { return id == a ? 1 : 0; });

  ASSERT_EQ(layout.rows(), 5);
  EXPECT_EQ(layout.decode_rows, 2);
  EXPECT_EQ(layout.tokens, (std::vector<int32_t>{8, 7, 9, 9, 9}));  // c (method 0) before a (method 1)
  EXPECT_EQ(layout.positions, (std::vector<int32_t>{5, 70, 0, 1, 2}));
  EXPECT_EQ(layout.row_slot, (std::vector<int32_t>{0, 1, 2, 2, 2}));
  EXPECT_EQ(layout.kv_lens, (std::vector<int32_t>{6, 71, 3}));
  ASSERT_EQ(layout.decode_groups.size(), 2u);
  EXPECT_EQ(layout.decode_groups[0].method, 0);
  EXPECT_EQ(layout.decode_groups[0].first_slot, 0);
  EXPECT_EQ(layout.decode_groups[1].method, 1);
  EXPECT_EQ(layout.decode_groups[1].first_slot, 1);
  ASSERT_EQ(layout.prefills.size(), 1u);
  EXPECT_EQ(layout.prefills[0].first_row, 2);
  EXPECT_EQ(layout.prefills[0].first_pos, 0);
  EXPECT_EQ(layout.prefills[0].prompt_end, 10);
  EXPECT_EQ(layout.entry_slot, (std::vector<int>{1, 2, 0}));
  EXPECT_EQ(layout.entry_first_row, (std::vector<int64_t>{1, 2, 0}));
  // Page-table rows: each slot's pages, zero-padded to the stride.
  const std::vector<int32_t>& pages_a = sequences.at(a).pages;
  ASSERT_EQ(pages_a.size(), 2u);
  EXPECT_EQ(layout.page_tables[4], pages_a[0]);
  EXPECT_EQ(layout.page_tables[5], pages_a[1]);
  EXPECT_EQ(layout.page_tables[6], 0);
  EXPECT_EQ(layout.page_tables[0], sequences.at(c).pages[0]);
  EXPECT_EQ(layout.page_tables[8], sequences.at(b).pages[0]);
}

TEST(StepLayout, RefusesAPageTableWiderThanItsStride) {
  KvSequences sequences(20, 1000, 100);
  const SequenceId a = sequences.open({});
  const std::vector<int32_t> prompt(200, 1);
  const BatchPlan plan{{prefill_entry(a, prompt.data(), 200, 0)}};
  sequences.reserve(plan, 1000);
  EXPECT_THROW(layout_step(plan, sequences, 2, [](SequenceId) { return 0; }), Error);
}

TEST(StepLayout, DecodeSlotBucketsArePowersOfTwoThenMultiplesOfEight) {
  EXPECT_EQ(decode_slot_bucket(1, 64), 1);
  EXPECT_EQ(decode_slot_bucket(3, 64), 4);
  EXPECT_EQ(decode_slot_bucket(5, 64), 8);
  EXPECT_EQ(decode_slot_bucket(9, 64), 16);
  EXPECT_EQ(decode_slot_bucket(17, 64), 24);
  EXPECT_EQ(decode_slot_bucket(64, 64), 64);
  EXPECT_EQ(decode_slot_bucket(5, 6), 6);  // never past the planned batch
  std::set<int> buckets;
  for (int slots = 1; slots <= 64; ++slots) {
    const int bucket = decode_slot_bucket(slots, 64);
    EXPECT_GE(bucket, slots);
    buckets.insert(bucket);
  }
  EXPECT_EQ(buckets.size(), 11u);
  EXPECT_THROW(decode_slot_bucket(0, 64), Error);
  EXPECT_THROW(decode_slot_bucket(65, 64), Error);
}

TEST(StepLayout, PaddedDecodeSlotsReadOnlyTheScratchPage) {
  KvSequences sequences(20, 1000, 100);
  const SequenceId a = sequences.open({}), b = sequences.open({});
  const std::vector<int32_t> prompt(70, 1);
  const BatchPlan prefill{{prefill_entry(a, prompt.data(), 70, 0), prefill_entry(b, prompt.data(), 3, 0)}};
  sequences.reserve(prefill, 1000);
  sequences.commit(prefill);
  const int32_t ta = 7, tb = 8;
  const BatchPlan plan{{decode_entry(a, &ta), decode_entry(b, &tb)}};
  sequences.reserve(plan, 1000);
  StepLayout layout = layout_step(plan, sequences, 3, [](SequenceId) { return 0; });
  const StepLayout before = layout;
  pad_decode_slots(layout, 4, 19);

  ASSERT_EQ(layout.slots(), 4);
  EXPECT_EQ(layout.decode_rows, 4);
  EXPECT_EQ(layout.decode_groups.front().slots, 4);
  EXPECT_EQ(layout.tokens, (std::vector<int32_t>{7, 8, 0, 0}));
  EXPECT_EQ(layout.positions, (std::vector<int32_t>{70, 3, 0, 0}));
  EXPECT_EQ(layout.row_slot, (std::vector<int32_t>{0, 1, 2, 3}));
  EXPECT_EQ(layout.kv_lens, (std::vector<int32_t>{71, 4, 1, 1}));
  EXPECT_EQ(std::vector<int32_t>(layout.page_tables.begin(), layout.page_tables.begin() + 6),
            std::vector<int32_t>(before.page_tables.begin(), before.page_tables.end()));
  EXPECT_EQ(std::vector<int32_t>(layout.page_tables.begin() + 6, layout.page_tables.end()),
            (std::vector<int32_t>{19, 0, 0, 19, 0, 0}));
  EXPECT_EQ(layout.entry_slot, before.entry_slot);
  EXPECT_EQ(layout.entry_first_row, before.entry_first_row);

  StepLayout with_prefill = layout_step(BatchPlan{{prefill_entry(a, prompt.data(), 1, 0)}}, sequences, 3,
                                        [](SequenceId) { return 0; });
  EXPECT_THROW(pad_decode_slots(with_prefill, 2, 19), Error);
}

}  // namespace
}  // namespace deltainfer::runtime
