#pragma once
// The architecture tables, one per architecture_<name>.cpp, for the registry in architecture.cpp.
#include "model/architecture.h"

namespace deltainfer::model {

const ArchitectureTable& llama_architecture();
const ArchitectureTable& qwen2_architecture();
const ArchitectureTable& qwen3_architecture();

// Llama's tensors under another architecture's name: the family Qwen2 and Qwen3 extend.
ArchitectureTable llama_family_table(Architecture id, const char* name, RopeStyle gguf_rope_style);

}  // namespace deltainfer::model
