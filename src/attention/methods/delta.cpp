// DELTA decode (METHODS.md section 2): dense first layers; Δ-layers attend densely and select one
// token set for all heads, plus a recency window, that the layers above attend to.
#include <fmt/format.h>

#include "attention/method_registry.h"
#include "attention/methods/delta_selection.h"
#include "attention/methods/page_budget.h"
#include "core/error.h"

namespace deltainfer::attention::methods {
namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

void validate_delta(const AttentionConfig& c) {
  const DecodeConfig& d = c.decode;
  require_budget_pages(d);
  const int64_t pages = d.budget / d.page, forced = 1 + ceil_div(d.recency, d.page);  // sink page + recency pages
  if (forced > pages) {
    throw_input_error("--budget {} holds {} pages of {} but the sink page and --recency {} already need {}", d.budget,
                      pages, d.page, d.recency, forced);
  }
}

}  // namespace

DecodeMethodInfo delta() {
  DecodeMethodInfo m;
  m.description =
      "DELTA: dense first layers; Δ-layers attend densely and select one token set for all heads "
      "(+ recency window) that the layers above attend to";
  m.parameters = "--budget, --page, --recency, --full-layers, --delta-layers, --head-aggregation";
  m.validate = validate_delta;
  m.describe = [](const AttentionConfig& c) {
    return describe_delta_selection(c.decode) + fmt::format(" recency={}", c.decode.recency);
  };
  m.layer_roles = delta_layer_roles;
  m.sparse_tokens = budget_tokens;
  m.cpu_policy = [](const AttentionConfig& config, const HeadShape& shape) {
    return delta_selection_policy(config, shape, config.decode.recency);
  };
  return m;
}

}  // namespace deltainfer::attention::methods
