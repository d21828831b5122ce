#pragma once
// `--backend cpu|cuda`: which backend runs the model. The CUDA one exists only in CUDA builds.
#include <CLI/CLI.hpp>

#include "engine/engine.h"

namespace deltainfer::cli {

struct BackendOptions {
  engine::BackendKind kind = engine::BackendKind::Cpu;

  void add_to(CLI::App& command);
  // The factory for the chosen non-CPU backend, empty when this build lacks it.
  engine::TransformerFactory factory() const;
};

}  // namespace deltainfer::cli
