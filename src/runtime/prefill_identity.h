#pragma once
// Whether two attention methods prefill a prompt identically: the same prefill method with the
// same knobs, so the keys, values and last logits of a prompt are the same under both and only
// their decode differs. A sequence's method may then change after its prompt
// (Transformer::set_sequence_method), and an eval answers several decode methods from one prefill.
#include "attention/attention_config.h"

namespace deltainfer::runtime {

bool same_prefill(const attention::AttentionConfig& a, const attention::AttentionConfig& b);

}  // namespace deltainfer::runtime
