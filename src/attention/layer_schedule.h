#pragma once
// LayerSchedule: the role of every layer in a decode step (METHODS.md section 2 and 3).
//   Full        dense attention;
//   DeltaSelect dense attention, and its probabilities select the token set for the layers above;
//   Sparse      attention over a selected set: DELTA/Tidal reuse the set of the most recent
//               Δ-layer below; Quest and StreamingLLM choose their own set in the layer.
// Each decode method gives its roles (DecodeMethodInfo::layer_roles, method_registry.h).
// DELTA/Tidal layers at or above F but below the first Δ-layer have no set yet: they run Full.
#include <vector>

#include "attention/attention_config.h"

namespace deltainfer::attention {

enum class LayerRole { Full, DeltaSelect, Sparse };

class LayerSchedule {
 public:
  LayerSchedule(const DecodeConfig& decode, int n_layers);

  LayerRole role(int layer) const { return roles_.at(static_cast<size_t>(layer)); }
  int n_layers() const { return static_cast<int>(roles_.size()); }

 private:
  std::vector<LayerRole> roles_;
};

const char* layer_role_name(LayerRole role);

}  // namespace deltainfer::attention
