#include "attention/methods/page_budget.h"

#include <fmt/format.h>

#include "core/error.h"

namespace deltainfer::attention::methods {

void require_budget_pages(const DecodeConfig& d) {
  if (d.budget / d.page < 1) {
    throw_input_error("--budget {} is smaller than one --page of {} tokens", d.budget, d.page);
  }
}

std::string describe_budget(const DecodeConfig& d) {
  return fmt::format(" budget={} page={} full={}", d.budget, d.page, d.full_layers);
}

int64_t budget_tokens(const AttentionConfig& config) { return config.decode.budget; }

}  // namespace deltainfer::attention::methods
