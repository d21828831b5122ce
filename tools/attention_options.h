#pragma once
// The attention-policy flags of a subcommand (generate, bench, ...) and the AttentionConfig they
// build: --prefill dense|sliding|vslash[+delta], --decode dense|delta|streaming|quest|tidal and
// their knobs (docs/METHODS.md), plus --fidelity out.json for the per-layer fidelity report.
#include <CLI/CLI.hpp>

#include <string>

#include "attention/attention_config.h"
#include "runtime/transformer.h"

namespace deltainfer::cli {

struct AttentionOptions {
  std::string prefill = "dense";
  std::string fidelity_path;
  std::string delta_preset;  // "", "ours" or "authors" (--delta-preset)
  attention::AttentionConfig config;
  // Flags a --delta-preset fills in unless they are given (set by add_to).
  const CLI::Option* prefill_flag = nullptr;
  const CLI::Option* window_flag = nullptr;
  const CLI::Option* sink_flag = nullptr;
  const CLI::Option* gamma_flag = nullptr;

  // Registers the flags on `command`; defaults are those of AttentionConfig.
  void add_to(CLI::App& command);
  // The validated config (InputError naming the flag); layer indices are checked by the engine.
  attention::AttentionConfig to_config() const;
  // Writes the fidelity report of the model's attention to --fidelity (nothing without the flag).
  // InputError when the backend keeps no report (only the CPU backend does) or the file fails.
  void write_fidelity(runtime::Transformer& transformer) const;
};

}  // namespace deltainfer::cli
