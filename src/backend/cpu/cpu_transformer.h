#pragma once
// The Llama-family forward pass on the CPU in f32: one readable path from token ids to logits.
// A forward pass runs a batch (runtime/batch_plan.h): the rows of every entry go through the same
// norms and matrix products; attention runs per entry under its sequence's own policy
// (attention/), over that sequence's pages of the shared KV pool.
#include <map>
#include <memory>
#include <vector>

#include "attention/cpu_attention.h"
#include "backend/cpu/cpu_weights.h"
#include "runtime/kv_sequences.h"
#include "runtime/transformer.h"

namespace deltainfer::backend::cpu {

class CpuTransformer final : public runtime::Transformer {
 public:
  CpuTransformer(const model::ModelSource& source, const runtime::BackendOptions& options);

  const model::ModelConfig& config() const override { return config_; }
  int64_t capacity() const override { return sequences_.capacity(); }
  int64_t max_batch_tokens() const override { return max_batch_tokens_; }
  int64_t prefill_chunk() const override { return prefill_chunk_; }

  runtime::SequenceId open_sequence(const attention::AttentionConfig& method) override;
  void close_sequence(runtime::SequenceId id) override;
  int64_t sequence_length(runtime::SequenceId id) const override { return sequences_.at(id).length; }
  void truncate_sequence(runtime::SequenceId id, int64_t length) override;
  void set_sequence_method(runtime::SequenceId id, const attention::AttentionConfig& method) override;
  runtime::KvUsage kv_usage() const override { return sequences_.usage(); }
  runtime::SequenceId default_sequence() const override { return default_sequence_; }

  using runtime::Transformer::forward;
  void forward(const runtime::BatchPlan& plan) override;

  // The attention policy of a sequence (its fidelity report, its decode selection).
  attention::CpuAttention& attention(runtime::SequenceId id) { return *attention_.at(id); }
  attention::CpuAttention& attention() { return attention(default_sequence_); }
  std::optional<nlohmann::json> attention_fidelity() override { return attention().fidelity().to_json(); }

 private:
  struct Scratch {
    std::vector<float> x, normed, q, k, v, attn, proj, gate, up;
  };

  void embed(const runtime::BatchPlan& plan, int64_t rows);
  void attention_block(int layer, const runtime::BatchPlan& plan, int64_t rows);
  // Rotates the entry's q and k rows and writes its keys and values into its pages.
  void rope_and_append_kv(int layer, const runtime::BatchEntry& entry, int64_t first_row);
  void attend(int layer, const runtime::BatchEntry& entry, int64_t first_row);
  void feed_forward_block(int layer, int64_t n);
  void write_logits(const runtime::BatchPlan& plan);
  void compute_logits(const float* hidden, int64_t rows, float* logits);

  model::ModelConfig config_;
  CpuWeights weights_;
  int threads_;
  int64_t prefill_chunk_;
  int64_t max_batch_tokens_;  // a full prefill chunk beside max_batch - 1 decode steps
  runtime::KvSequences sequences_;
  std::map<runtime::SequenceId, std::unique_ptr<attention::CpuAttention>> attention_;
  runtime::SequenceId default_sequence_ = 0;
  std::vector<float> inv_freq_;
  std::vector<std::vector<float>> k_pool_, v_pool_;  // per layer [pages][n_kv_heads][kKvPageTokens][head_dim]
  Scratch s_;
};

}  // namespace deltainfer::backend::cpu
