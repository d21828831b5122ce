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

// KV bytes of one page: keys and values of every layer, f32 on the CPU, bf16 on CUDA.
int64_t kv_page_bytes(const model::ModelConfig& model, engine::BackendKind backend);

}  // namespace deltainfer::cli
