#pragma once
// The Llama-family forward pass on the CPU in f32: one readable path from token ids to logits.
// Attention goes through the attention policy (attention/), everything else through ops.h.
#include <memory>
#include <vector>

#include "attention/attention_config.h"
#include "attention/cpu_attention.h"
#include "backend/cpu/cpu_weights.h"
#include "model/transformer.h"

namespace deltainfer::backend::cpu {

struct CpuTransformerOptions {
  int64_t capacity = 0;        // KV positions to allocate (prompt + generated tokens)
  int64_t prefill_chunk = 512; // prompt tokens per forward chunk (bounds activation memory)
  int threads = 0;             // 0: all hardware threads
};

class CpuTransformer final : public model::Transformer {
 public:
  CpuTransformer(const model::ModelSource& source, const attention::AttentionConfig& attention,
                 const CpuTransformerOptions& options);

  const model::ModelConfig& config() const override { return config_; }
  int64_t capacity() const override { return capacity_; }
  int64_t cached_tokens() const override { return cached_; }
  void forward(const int32_t* tokens, int64_t n, model::LogitsFor which, float* logits) override;
  void truncate(int64_t n_tokens) override;

  attention::CpuAttention& attention() { return *attention_; }

 private:
  struct Scratch {
    std::vector<float> x, normed, q, k, v, attn, proj, gate, up;
  };

  // prompt_end: one past the last token of this forward call; a call of one token after a
  // prompt is a decode step, any other call a prefill (of one or more chunks).
  void forward_chunk(const int32_t* tokens, int64_t n, int64_t prompt_end, bool is_decode, model::LogitsFor which,
                     float* logits);
  void attention_block(int layer, int64_t n, int64_t prompt_end, bool is_decode);
  void feed_forward_block(int layer, int64_t n);
  void append_kv(int layer, int64_t n);
  void compute_logits(const float* hidden, int64_t rows, float* logits);

  model::ModelConfig config_;
  CpuWeights weights_;
  std::unique_ptr<attention::CpuAttention> attention_;
  int64_t capacity_;
  int64_t prefill_chunk_;
  int64_t cached_ = 0;
  std::vector<float> inv_freq_;
  std::vector<std::vector<float>> k_cache_, v_cache_;  // per layer [n_kv_heads][capacity][head_dim]
  Scratch s_;
};

}  // namespace deltainfer::backend::cpu
