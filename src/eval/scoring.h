#pragma once
// Scoring as RULER does for these tasks (string_match_all): the fraction of the expected values
// that appear in the model's answer, compared case-insensitively, after dropping control
// characters from the answer. A sample scores 0..1; a cell's accuracy is the mean × 100.
#include <string>
#include <string_view>
#include <vector>

namespace deltainfer::eval {

double string_match_all(std::string_view answer, const std::vector<std::string>& expected);

}  // namespace deltainfer::eval
