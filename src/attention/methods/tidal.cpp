// TidalDecode (METHODS.md): DELTA's selection without the recency window.
#include "attention/method_registry.h"
#include "attention/methods/delta_selection.h"
#include "attention/methods/page_budget.h"

namespace deltainfer::attention::methods {

DecodeMethodInfo tidal() {
  DecodeMethodInfo m;
  m.description = "TidalDecode: DELTA's selection without the recency window";
  m.parameters = "--budget, --page, --full-layers, --delta-layers, --head-aggregation";
  m.validate = [](const AttentionConfig& c) { require_budget_pages(c.decode); };
  m.describe = [](const AttentionConfig& c) { return describe_delta_selection(c.decode); };
  m.layer_roles = delta_layer_roles;
  m.sparse_tokens = budget_tokens;
  m.cpu_policy = [](const AttentionConfig& config, const HeadShape& shape) {
    return delta_selection_policy(config, shape, /*recency=*/0);
  };
  return m;
}

}  // namespace deltainfer::attention::methods
