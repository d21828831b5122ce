#pragma once
// The --methods list of `deltainfer eval`: methods separated by ';', each a name with optional
// key=value parameters after ':', separated by ',':
//   "dense;sliding+delta:window=512,gamma=32;delta:budget=512;streaming;quest"
// This file only splits and checks the syntax; turning a spec into an AttentionConfig is the job
// of method_config.h, which knows the names and keys.
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace deltainfer::eval {

struct MethodSpec {
  std::string label;  // the spec as written (trimmed), used in tables and JSON
  std::string name;   // before ':'
  std::vector<std::pair<std::string, std::string>> params;  // in order; keys unique
};

// Throws InputError (naming the flag and the bad part) on an empty name, a parameter without '=',
// an empty key or value, a repeated key, or a repeated method.
std::vector<MethodSpec> parse_method_specs(std::string_view text);

}  // namespace deltainfer::eval
