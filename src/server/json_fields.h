#pragma once
// Typed reads of a request body's fields: absent or null gives nullopt; a value of the wrong type
// or out of range is a 400 ApiError naming the field.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace deltainfer::server {

// The body as a JSON object (400 when it is not JSON or not an object).
nlohmann::json parse_object(const std::string& body);

std::optional<bool> optional_bool(const nlohmann::json& body, const char* key);
std::optional<std::string> optional_string(const nlohmann::json& body, const char* key);
// An integer in [min, max].
std::optional<int64_t> optional_integer(const nlohmann::json& body, const char* key, int64_t min, int64_t max);
// A number in [min, max].
std::optional<double> optional_number(const nlohmann::json& body, const char* key, double min, double max);
// An array of integer token ids in [0, vocab_size).
std::vector<int32_t> token_ids(const nlohmann::json& value, const char* key, int32_t vocab_size);
// A string or an array of strings (OpenAI's `stop`); at most `max_count`, none empty.
std::vector<std::string> string_or_strings(const nlohmann::json& body, const char* key, size_t max_count);

}  // namespace deltainfer::server
