#pragma once
// Methods that prefill alike (runtime::same_prefill: e.g. dense, DELTA, Quest and Tidal all
// prefill densely) read a prompt into the same keys and first token, so an eval reads it once and
// answers each of them from it (batched_answers.h).
#include <cstddef>
#include <vector>

#include "attention/attention_config.h"

namespace deltainfer::eval {

// Indices into `methods`, grouped by prefill: groups in the order of their first method, members
// in the order given. share == false: every method alone.
std::vector<std::vector<size_t>> prefill_groups(const std::vector<attention::AttentionConfig>& methods, bool share);

}  // namespace deltainfer::eval
