#pragma once
// `--backend cpu|cuda`: which backend runs the model (the CUDA one exists only in CUDA builds), and
// `--kv-dtype bf16|fp8`: the element type of the CUDA KV cache.
#include <CLI/CLI.hpp>

#include "engine/engine.h"

namespace deltainfer::cli {

struct BackendOptions {
  engine::BackendKind kind = engine::BackendKind::Cpu;
  KvDtype kv_dtype = KvDtype::Bf16;

  void add_to(CLI::App& command);
  // Sets the engine's backend and KV dtype from these flags.
  void apply_to(engine::EngineConfig& config) const;
  // The factory for the chosen non-CPU backend, empty when this build lacks it.
  engine::TransformerFactory factory() const;
};

// KV bytes of one page: keys and values of every layer, f32 on the CPU, --kv-dtype on CUDA.
int64_t kv_page_bytes(const model::ModelConfig& model, const BackendOptions& backend);

}  // namespace deltainfer::cli
