#include "eval/method_spec.h"

#include <algorithm>

#include "core/error.h"

namespace deltainfer::eval {
namespace {

std::string_view trimmed(std::string_view text) {
  const auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  while (!text.empty() && is_space(text.front())) text.remove_prefix(1);
  while (!text.empty() && is_space(text.back())) text.remove_suffix(1);
  return text;
}

std::vector<std::string_view> split(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  for (size_t i = 0; i <= text.size(); ++i) {
    if (i == text.size() || text[i] == separator) {
      parts.push_back(trimmed(text.substr(start, i - start)));
      start = i + 1;
    }
  }
  return parts;
}

MethodSpec parse_one(std::string_view spec) {
  MethodSpec method;
  method.label = std::string(spec);
  const size_t colon = spec.find(':');
  method.name = std::string(trimmed(spec.substr(0, colon)));
  if (method.name.empty()) throw_input_error("--methods: '{}' has no method name before ':'", spec);
  if (colon == std::string_view::npos) return method;
  for (std::string_view param : split(spec.substr(colon + 1), ',')) {
    const size_t equals = param.find('=');
    if (equals == std::string_view::npos) {
      throw_input_error("--methods: in '{}', parameter '{}' is not key=value", spec, param);
    }
    std::string key(trimmed(param.substr(0, equals)));
    std::string value(trimmed(param.substr(equals + 1)));
    if (key.empty() || value.empty()) {
      throw_input_error("--methods: in '{}', parameter '{}' needs a key and a value", spec, param);
    }
    const bool repeated = std::any_of(method.params.begin(), method.params.end(),
                                      [&](const auto& p) { return p.first == key; });
    if (repeated) throw_input_error("--methods: in '{}', '{}' is given twice", spec, key);
    method.params.emplace_back(std::move(key), std::move(value));
  }
  return method;
}

}  // namespace

std::vector<MethodSpec> parse_method_specs(std::string_view text) {
  std::vector<MethodSpec> methods;
  for (std::string_view spec : split(text, ';')) {
    if (spec.empty()) continue;  // tolerate "dense;" and ";;"
    MethodSpec method = parse_one(spec);
    const bool repeated = std::any_of(methods.begin(), methods.end(),
                                      [&](const MethodSpec& m) { return m.label == method.label; });
    if (repeated) throw_input_error("--methods: '{}' is listed twice", method.label);
    methods.push_back(std::move(method));
  }
  if (methods.empty()) throw_input_error("--methods: no method given (e.g. \"dense;streaming\")");
  return methods;
}

}  // namespace deltainfer::eval
