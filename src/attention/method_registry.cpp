#include "attention/method_registry.h"

#include <fmt/format.h>

#include "core/error.h"

namespace deltainfer::attention {

namespace {

// The .def file's kind and name over the method's own row.
template <typename Kind, typename Info>
Info registered(Kind kind, const char* name, Info method) {
  method.kind = kind;
  method.name = name;
  return method;
}

}  // namespace

const std::vector<PrefillMethodInfo>& prefill_methods() {
  static const std::vector<PrefillMethodInfo> rows = {
#define DELTAINFER_PREFILL_METHOD(kind, name) registered(PrefillKind::kind, #name, methods::name##_prefill()),
#include "attention/methods/prefill_methods.def"
#undef DELTAINFER_PREFILL_METHOD
  };
  return rows;
}

const std::vector<DecodeMethodInfo>& decode_methods() {
  static const std::vector<DecodeMethodInfo> rows = {
#define DELTAINFER_DECODE_METHOD(kind, name) registered(DecodeKind::kind, #name, methods::name()),
#include "attention/methods/decode_methods.def"
#undef DELTAINFER_DECODE_METHOD
  };
  return rows;
}

const PrefillMethodInfo& prefill_method(PrefillKind kind) {
  for (const PrefillMethodInfo& method : prefill_methods()) {
    if (method.kind == kind) return method;
  }
  throw_error("prefill kind {} has no registry row", static_cast<int>(kind));
}

const DecodeMethodInfo& decode_method(DecodeKind kind) {
  for (const DecodeMethodInfo& method : decode_methods()) {
    if (method.kind == kind) return method;
  }
  throw_error("decode kind {} has no registry row", static_cast<int>(kind));
}

std::optional<PrefillKind> find_prefill_method(std::string_view name) {
  for (const PrefillMethodInfo& method : prefill_methods()) {
    if (name == method.name) return method.kind;
  }
  return std::nullopt;
}

std::optional<DecodeKind> find_decode_method(std::string_view name) {
  for (const DecodeMethodInfo& method : decode_methods()) {
    if (name == method.name) return method.kind;
  }
  return std::nullopt;
}

namespace {

template <typename Methods>
std::string names_of(const Methods& methods, std::string_view separator) {
  std::string names;
  for (const auto& method : methods) {
    if (!names.empty()) names += separator;
    names += method.name;
  }
  return names;
}

}  // namespace

std::string prefill_method_names(std::string_view separator) { return names_of(prefill_methods(), separator); }
std::string decode_method_names(std::string_view separator) { return names_of(decode_methods(), separator); }

std::string methods_markdown_table() {
  std::string table = "| method | phase | what it attends to | knobs |\n|---|---|---|---|\n";
  for (const PrefillMethodInfo& m : prefill_methods()) {
    table += fmt::format("| `{}` | prefill | {} | {} |\n", m.name, m.description, m.parameters);
  }
  for (const DecodeMethodInfo& m : decode_methods()) {
    table += fmt::format("| `{}` | decode | {} | {} |\n", m.name, m.description, m.parameters);
  }
  return table;
}

}  // namespace deltainfer::attention
