#pragma once
// ModelConfig: the shapes and hyper-parameters of a Llama-family decoder, read once from the model
// file (GGUF metadata or HF config.json) and validated by validate().
#include <cstdint>
#include <string>

namespace deltainfer::model {

enum class Architecture { Llama, Qwen2, Qwen3 };

// How RoPE pairs the dimensions of a head: Interleaved rotates (2i, 2i+1) (llama.cpp's layout for
// Llama GGUF files, whose Q/K rows were permuted at conversion); HalfSplit rotates (i, i + d/2)
// (HF's rotate_half; Qwen GGUF files and every safetensors checkpoint).
enum class RopeStyle { Interleaved, HalfSplit };

struct RopeScaling {
  // Llama 3.1 "llama3" frequency scaling; factor == 1 means none.
  float factor = 1.0f;
  float low_freq_factor = 1.0f;
  float high_freq_factor = 4.0f;
  int64_t original_context = 8192;
};

struct ModelConfig {
  Architecture arch = Architecture::Llama;
  std::string name;               // human-readable, e.g. "SmolLM2-135M-Instruct"
  int n_layers = 0;
  int d_model = 0;                // hidden size
  int n_heads = 0;                // query heads
  int n_kv_heads = 0;             // key/value heads (GQA)
  int head_dim = 0;
  int ffn_dim = 0;                // SwiGLU intermediate size
  int vocab_size = 0;
  int64_t context_length = 0;     // trained maximum
  float rms_eps = 1e-5f;
  float rope_theta = 10000.0f;
  RopeStyle rope_style = RopeStyle::HalfSplit;
  RopeScaling rope_scaling;
  bool qkv_bias = false;          // Qwen2/2.5
  bool qk_norm = false;           // Qwen3: RMSNorm over each head of q and k before RoPE
  bool tied_embeddings = false;   // output projection shares token_embd

  int q_dim() const { return n_heads * head_dim; }
  int kv_dim() const { return n_kv_heads * head_dim; }
  int group_size() const { return n_heads / n_kv_heads; }

  // Throws InputError naming `source` when a field is missing or inconsistent.
  void validate(const std::string& source) const;
};

const char* architecture_name(Architecture arch);

}  // namespace deltainfer::model
