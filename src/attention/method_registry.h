#pragma once
// The attention methods by name: one row each, with the phase it runs in, what it does and the
// knobs it reads. The CLI's --prefill/--decode choices, `eval --methods`, describe() and the docs
// table (`deltainfer methods`, docs/METHODS.md) read it; a method's name is spelled only here.
// (The CPU policies and CUDA implementations are still dispatched on the kind in
// attention/cpu_attention.cpp and backend/cuda/cuda_attention.cpp: see docs/HOWTO-sparse-method.md.)
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "attention/attention_config.h"

namespace deltainfer::attention {

struct PrefillMethodInfo {
  PrefillKind kind;
  const char* name;
  const char* description;
  const char* parameters;  // the flags it reads, as `--flag` names
};

struct DecodeMethodInfo {
  DecodeKind kind;
  const char* name;
  const char* description;
  const char* parameters;
};

const std::vector<PrefillMethodInfo>& prefill_methods();
const std::vector<DecodeMethodInfo>& decode_methods();

const PrefillMethodInfo& prefill_method(PrefillKind kind);
const DecodeMethodInfo& decode_method(DecodeKind kind);
std::optional<PrefillKind> find_prefill_method(std::string_view name);
std::optional<DecodeKind> find_decode_method(std::string_view name);

// "dense, sliding, vslash" / "dense, delta, streaming, quest, tidal" (for messages and help).
std::string prefill_method_names(std::string_view separator = ", ");
std::string decode_method_names(std::string_view separator = ", ");

// The docs table: one markdown row per method, phase, description and parameters.
std::string methods_markdown_table();

}  // namespace deltainfer::attention
