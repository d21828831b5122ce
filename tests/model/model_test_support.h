#pragma once
// Shared by the model tests: where the default model and fixtures live, and a skip when absent.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "support/scoped_cpu_weights.h"

namespace deltainfer::testing {

// The largest difference of two logit rows over the largest magnitude of `want`.
inline double relative_difference(const std::vector<float>& got, const std::vector<float>& want) {
  double worst = 0, scale = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    worst = std::max(worst, std::fabs(double{got[i]} - want[i]));
    scale = std::max(scale, std::fabs(double{want[i]}));
  }
  return worst / scale;
}

inline std::string smollm2_path() {
  return std::string(DELTAINFER_SOURCE_DIR) + "/models/SmolLM2-135M-Instruct.Q4_1.gguf";
}

inline std::string fixture_path(const std::string& relative) {
  return std::string(DELTAINFER_SOURCE_DIR) + "/tests/fixtures/" + relative;
}

}  // namespace deltainfer::testing

#define DELTAINFER_REQUIRE_SMOLLM2()                                                                  \
  do {                                                                                              \
    if (!std::filesystem::exists(::deltainfer::testing::smollm2_path())) {                          \
      GTEST_SKIP() << "model absent: " << ::deltainfer::testing::smollm2_path()                     \
                   << " (run scripts/fetch-model)";                                                 \
    }                                                                                               \
  } while (0)
