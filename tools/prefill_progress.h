#pragma once
// `--progress auto|on|off` of generate and bench: while a prompt longer than one chunk is
// prefilled, a bar with tokens/s and the ETA on stderr (plain lines when stderr is not a terminal,
// core/progress.h). auto shows it for prompts of at least kAutoMinChunks chunks, where a prefill
// can take long enough to wonder about (a 1M-token prompt takes tens of seconds on an H200).
#include <CLI/CLI.hpp>

#include <cstdint>

#include "runtime/transformer.h"

namespace deltainfer::cli {

enum class ProgressMode { Auto, On, Off };

inline constexpr int64_t kAutoMinChunks = 8;

void add_progress_option(CLI::App& command, ProgressMode& mode);

// Sets `model`'s prefill observer for `mode` (Off clears it).
void show_prefill_progress(runtime::Transformer& model, ProgressMode mode);

}  // namespace deltainfer::cli
