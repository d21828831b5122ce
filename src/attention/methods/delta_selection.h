#pragma once
// DELTA's selection (METHODS.md section 2), shared by DELTA and Tidal, which differ only in the
// recency window: Δ-layers attend densely and select one token set for all heads from their
// probabilities; the Sparse layers above attend that set.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "attention/attention_config.h"
#include "attention/cpu_decode_policy.h"
#include "attention/kv_view.h"
#include "attention/layer_schedule.h"

namespace deltainfer::attention::methods {

// Below the first Δ-layer Full, the Δ-layers DeltaSelect, the layers between and above Sparse.
std::vector<LayerRole> delta_layer_roles(const DecodeConfig& decode, int n_layers);

// " budget=... page=... full=... delta-layers=... heads=...".
std::string describe_delta_selection(const DecodeConfig& decode);

// The CPU policy; recency: tokens always kept (0 for Tidal).
std::unique_ptr<CpuDecodePolicy> delta_selection_policy(const AttentionConfig& config, const HeadShape& shape,
                                                        int64_t recency);

}  // namespace deltainfer::attention::methods
