// Qwen2 / Qwen2.5: Llama's tensors (its q, k and v biases are always there), and GGUF files that
// keep HF's half-split RoPE pairing (llama.cpp permutes only Llama's Q/K rows).
#include "model/architecture_tables.h"

namespace deltainfer::model {

const ArchitectureTable& qwen2_architecture() {
  static const ArchitectureTable table = llama_family_table(Architecture::Qwen2, "qwen2", RopeStyle::HalfSplit);
  return table;
}

}  // namespace deltainfer::model
