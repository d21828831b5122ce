#include "attention/layer_schedule.h"

#include <algorithm>

namespace deltainfer::attention {

LayerSchedule::LayerSchedule(const DecodeConfig& decode, int n_layers)
    : roles_(static_cast<size_t>(std::max(n_layers, 0)), LayerRole::Full) {
  switch (decode.kind) {
    case DecodeKind::Dense:
      return;
    case DecodeKind::Streaming:
      std::fill(roles_.begin(), roles_.end(), LayerRole::Sparse);
      return;
    case DecodeKind::Quest:
      for (int layer = decode.full_layers; layer < n_layers; ++layer) roles_[static_cast<size_t>(layer)] = LayerRole::Sparse;
      return;
    case DecodeKind::Delta:
    case DecodeKind::Tidal: {
      const std::vector<int> selecting = resolved_delta_layers(decode, n_layers);
      if (selecting.empty()) return;
      for (int layer = selecting.front(); layer < n_layers; ++layer) roles_[static_cast<size_t>(layer)] = LayerRole::Sparse;
      for (int layer : selecting) roles_[static_cast<size_t>(layer)] = LayerRole::DeltaSelect;
      return;
    }
  }
}

const char* layer_role_name(LayerRole role) {
  switch (role) {
    case LayerRole::Full: return "full";
    case LayerRole::DeltaSelect: return "delta-select";
    case LayerRole::Sparse: return "sparse";
  }
  return "unknown";
}

}  // namespace deltainfer::attention
