#pragma once
// `--backend cpu|cuda`: which backend runs the model (the CUDA one exists only in CUDA builds),
// `--kv-dtype bf16|fp8`: the element type of the CUDA KV cache, and `--tensor-parallel N` (CUDA):
// the model split over N GPUs of this host (1, 2, 4 or 8).
#include <CLI/CLI.hpp>

#include "engine/engine.h"

namespace deltainfer::cli {

struct BackendOptions {
  engine::BackendKind kind = engine::BackendKind::Cpu;
  KvDtype kv_dtype = KvDtype::Bf16;
  int tensor_parallel = 1;

  void add_to(CLI::App& command);
  // Sets the engine's backend and KV dtype from these flags.
  void apply_to(engine::EngineConfig& config) const;
  // The factory for the chosen non-CPU backend, empty when this build lacks it. InputError when
  // --tensor-parallel > 1 asks for a backend other than CUDA.
  engine::TransformerFactory factory() const;
};

// KV bytes of one page: keys and values of every layer, f32 on the CPU, --kv-dtype on CUDA.
int64_t kv_page_bytes(const model::ModelConfig& model, const BackendOptions& backend);

}  // namespace deltainfer::cli
