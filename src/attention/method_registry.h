#pragma once
// The attention methods by name: one row each, with the phase it runs in, what it does, the knobs
// it reads and everything the method-independent code asks of it (its describe() part, its cost,
// its CPU policy; for decode methods also its knob checks and layer roles). The CLI's
// --prefill/--decode choices, `eval --methods`, describe(), LayerSchedule, CpuAttention and the
// docs table (`deltainfer methods`, docs/METHODS.md) read it. A method is one line of
// attention/methods/{prefill,decode}_methods.def plus its own files (docs/HOWTO-sparse-method.md);
// its CUDA implementation has a registry of its own in backend/cuda/methods (this layer knows no
// CUDA).
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "attention/attention_config.h"
#include "attention/cpu_decode_policy.h"
#include "attention/cpu_prefill_policy.h"
#include "attention/kv_view.h"
#include "attention/layer_schedule.h"

namespace deltainfer::attention {

struct PrefillMethodInfo {
  PrefillKind kind = PrefillKind::Dense;  // filled in by the registry from prefill_methods.def
  const char* name = "";                  // idem
  const char* description = "";
  const char* parameters = "";            // the flags it reads, as `--flag` names

  // Its knobs for describe(), e.g. " window=2048 sink=64" (empty: none).
  std::string (*describe)(const AttentionConfig& config) = nullptr;
  // The most keys one row attends (an upper bound where they depend on the data; nullopt: every
  // key, a dense prefill, which Δ cannot correct): eval's attended share and budget column.
  std::optional<int64_t> (*kept_keys)(const AttentionConfig& config) = nullptr;
  // Its CPU policy for one sequence under `config` (CpuAttention's).
  std::unique_ptr<CpuPrefillPolicy> (*cpu_policy)(const AttentionConfig& config, const HeadShape& shape) = nullptr;
};

struct DecodeMethodInfo {
  DecodeKind kind = DecodeKind::Dense;  // filled in by the registry from decode_methods.def
  const char* name = "";                // idem
  const char* description = "";
  const char* parameters = "";          // the flags it reads, as `--flag` names

  // Its own checks, after AttentionConfig::validate checked every knob's range (InputError naming
  // the flag).
  void (*validate)(const AttentionConfig& config) = nullptr;
  // Its knobs for describe(), e.g. " budget=2048 page=16 full=2" (empty: none).
  std::string (*describe)(const AttentionConfig& config) = nullptr;
  // The role of each of n_layers layers (LayerSchedule).
  std::vector<LayerRole> (*layer_roles)(const DecodeConfig& decode, int n_layers) = nullptr;
  // The most tokens one of its Sparse layers attends (0: it has none): the cost model of eval's
  // "attended" column, eval's budget column and the bench floors.
  int64_t (*sparse_tokens)(const AttentionConfig& config) = nullptr;
  // The prefill `eval --methods <name>` pairs it with (StreamingLLM is one policy in both phases).
  PrefillKind eval_prefill = PrefillKind::Dense;
  // Its CPU policy for one sequence under `config` (CpuAttention's).
  std::unique_ptr<CpuDecodePolicy> (*cpu_policy)(const AttentionConfig& config, const HeadShape& shape) = nullptr;
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

// Each method's row, defined in its own file (attention/methods/<name>.cpp for a decode method,
// <name>_prefill.cpp for a prefill method); kind and name are the registry's.
namespace methods {
#define DELTAINFER_DECODE_METHOD(kind, name) DecodeMethodInfo name();
#include "attention/methods/decode_methods.def"
#undef DELTAINFER_DECODE_METHOD
#define DELTAINFER_PREFILL_METHOD(kind, name) PrefillMethodInfo name##_prefill();
#include "attention/methods/prefill_methods.def"
#undef DELTAINFER_PREFILL_METHOD
}  // namespace methods

}  // namespace deltainfer::attention
