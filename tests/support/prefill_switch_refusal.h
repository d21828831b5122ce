#pragma once
// The rule both backends' Transformer::set_sequence_method keep (runtime/transformer.h): a method
// that prefills otherwise is refused while the sequence holds positions, and taken once it is
// truncated to 0. One check for the CPU and the GPU tests.
#include <gtest/gtest.h>

#include "core/error.h"
#include "runtime/transformer.h"
#include "support/batch_driver.h"

namespace deltainfer::testing {

// `id` is open on `model` with a dense prefill and holds positions; it is closed on return.
inline void expect_prefill_switch_refused_while_positions_held(runtime::Transformer& model, runtime::SequenceId id) {
  EXPECT_THROW(model.set_sequence_method(id, small_sliding_delta()), InputError);
  model.truncate_sequence(id, 0);
  EXPECT_NO_THROW(model.set_sequence_method(id, small_sliding_delta()));
  model.close_sequence(id);
}

}  // namespace deltainfer::testing
