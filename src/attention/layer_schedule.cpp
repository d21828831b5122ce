#include "attention/layer_schedule.h"

#include <algorithm>

#include "attention/method_registry.h"
#include "core/error.h"

namespace deltainfer::attention {

LayerSchedule::LayerSchedule(const DecodeConfig& decode, int n_layers)
    : roles_(decode_method(decode.kind).layer_roles(decode, std::max(n_layers, 0))) {
  if (roles_.size() != static_cast<size_t>(std::max(n_layers, 0))) {
    throw_error("decode method {} gave {} layer roles for {} layers", decode_method(decode.kind).name, roles_.size(),
                n_layers);
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
