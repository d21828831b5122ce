#include "server/json_fields.h"

#include <fmt/format.h>

#include "server/api_error.h"

namespace deltainfer::server {
namespace {

const nlohmann::json* field(const nlohmann::json& body, const char* key) {
  const auto it = body.find(key);
  if (it == body.end() || it->is_null()) return nullptr;
  return &*it;
}

ApiError wrong_type(const char* key, const char* expected) {
  return bad_request(fmt::format("'{}' must be {}", key, expected), key, "invalid_type");
}

}  // namespace

nlohmann::json parse_object(const std::string& body) {
  nlohmann::json parsed;
  try {
    parsed = nlohmann::json::parse(body);
  } catch (const nlohmann::json::parse_error& e) {
    throw bad_request(fmt::format("the body is not valid JSON: {}", e.what()), "", "invalid_json");
  }
  if (!parsed.is_object()) throw bad_request("the body must be a JSON object", "", "invalid_json");
  return parsed;
}

std::optional<bool> optional_bool(const nlohmann::json& body, const char* key) {
  const nlohmann::json* value = field(body, key);
  if (value == nullptr) return std::nullopt;
  if (!value->is_boolean()) throw wrong_type(key, "a boolean");
  return value->get<bool>();
}

std::optional<std::string> optional_string(const nlohmann::json& body, const char* key) {
  const nlohmann::json* value = field(body, key);
  if (value == nullptr) return std::nullopt;
  if (!value->is_string()) throw wrong_type(key, "a string");
  return value->get<std::string>();
}

std::optional<int64_t> optional_integer(const nlohmann::json& body, const char* key, int64_t min, int64_t max) {
  const nlohmann::json* value = field(body, key);
  if (value == nullptr) return std::nullopt;
  if (!value->is_number_integer()) throw wrong_type(key, "an integer");
  if (value->is_number_unsigned() && value->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
    throw bad_request(fmt::format("'{}' must be in [{}, {}]", key, min, max), key, "invalid_value");
  }
  const int64_t number = value->get<int64_t>();
  if (number < min || number > max) {
    throw bad_request(fmt::format("'{}' must be in [{}, {}] (got {})", key, min, max, number), key, "invalid_value");
  }
  return number;
}

std::optional<double> optional_number(const nlohmann::json& body, const char* key, double min, double max) {
  const nlohmann::json* value = field(body, key);
  if (value == nullptr) return std::nullopt;
  if (!value->is_number()) throw wrong_type(key, "a number");
  const double number = value->get<double>();
  if (!(number >= min && number <= max)) {
    throw bad_request(fmt::format("'{}' must be in [{}, {}] (got {})", key, min, max, number), key, "invalid_value");
  }
  return number;
}

std::vector<int32_t> token_ids(const nlohmann::json& value, const char* key, int32_t vocab_size) {
  if (!value.is_array()) throw wrong_type(key, "an array of token ids");
  std::vector<int32_t> ids;
  ids.reserve(value.size());
  for (const nlohmann::json& id : value) {
    if (!id.is_number_integer()) throw wrong_type(key, "an array of integer token ids");
    const int64_t number = id.get<int64_t>();
    if (number < 0 || number >= vocab_size || (id.is_number_unsigned() && id.get<uint64_t>() >= static_cast<uint64_t>(vocab_size))) {
      throw bad_request(fmt::format("token id {} in '{}' is outside the vocabulary [0, {})", id.dump(), key, vocab_size),
                        key, "invalid_value");
    }
    ids.push_back(static_cast<int32_t>(number));
  }
  return ids;
}

std::vector<std::string> string_or_strings(const nlohmann::json& body, const char* key, size_t max_count) {
  const nlohmann::json* value = field(body, key);
  if (value == nullptr) return {};
  std::vector<std::string> strings;
  if (value->is_string()) {
    strings.push_back(value->get<std::string>());
  } else if (value->is_array()) {
    for (const nlohmann::json& item : *value) {
      if (!item.is_string()) throw wrong_type(key, "a string or an array of strings");
      strings.push_back(item.get<std::string>());
    }
  } else {
    throw wrong_type(key, "a string or an array of strings");
  }
  if (strings.size() > max_count) {
    throw bad_request(fmt::format("'{}' takes at most {} strings (got {})", key, max_count, strings.size()), key,
                      "invalid_value");
  }
  for (const std::string& s : strings) {
    if (s.empty()) throw bad_request(fmt::format("'{}' must not contain an empty string", key), key, "invalid_value");
  }
  return strings;
}

}  // namespace deltainfer::server
