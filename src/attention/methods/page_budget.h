#pragma once
// What the methods that keep --budget tokens in whole --page pages above --full-layers share
// (DELTA, Tidal, Quest): the check that the budget holds a page, their describe() part, their cost.
#include <cstdint>
#include <string>

#include "attention/attention_config.h"

namespace deltainfer::attention::methods {

// InputError unless --budget holds at least one --page.
void require_budget_pages(const DecodeConfig& decode);

// " budget=2048 page=16 full=2".
std::string describe_budget(const DecodeConfig& decode);

// A sparse layer attends the budget.
int64_t budget_tokens(const AttentionConfig& config);

}  // namespace deltainfer::attention::methods
