#pragma once
// Reads the JSON fixtures written by scripts/gen-tokenizer-fixtures.
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

namespace deltainfer::test {

inline std::string tokenizer_fixture_path(const std::string& name) {
  return std::string(DELTAINFER_SOURCE_DIR) + "/tests/fixtures/tokenizer/" + name;
}

inline nlohmann::json read_tokenizer_fixture(const std::string& name) {
  std::ifstream in(tokenizer_fixture_path(name), std::ios::binary);
  if (!in) throw std::runtime_error("missing fixture " + tokenizer_fixture_path(name) + " (run scripts/gen-tokenizer-fixtures)");
  return nlohmann::json::parse(in);
}

}  // namespace deltainfer::test
