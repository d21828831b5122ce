#pragma once
// The optional `deltainfer` object of a request body: the attention method of that request, e.g.
//   {"prefill": "sliding+delta", "window": 2048, "gamma": 64, "decode": "delta", "budget": 2048}
// `prefill` is a prefill method of the CLI's --prefill (default dense); every other key is a key
// of `deltainfer eval --methods` (eval/method_config.h), with numbers, strings ("25%") or, for
// delta_layers, an array of layer indices. Unnamed knobs take their documented defaults, not the
// server's. Validated by the same parsers as the CLI and eval; a bad one is a 400 naming the key.
#include <nlohmann/json.hpp>

#include <cstdint>

#include "attention/attention_config.h"

namespace deltainfer::server {

attention::AttentionConfig method_from_json(const nlohmann::json& object, int64_t context_tokens, int n_layers);

}  // namespace deltainfer::server
