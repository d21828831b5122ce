#pragma once
// CpuAttention: runs the configured policy (what each query attends to, per layer and phase) on
// the exact CPU kernel (exact_kernel.h), threaded over heads and query blocks. The CPU backend
// calls prefill() per layer for each prompt chunk and decode() for layers 0..L-1 of each step.
#include <cstdint>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include "attention/attention_config.h"
#include "attention/cpu_decode_policy.h"
#include "attention/cpu_prefill_policy.h"
#include "attention/delta_correction.h"
#include "attention/exact_kernel.h"
#include "attention/fidelity.h"
#include "attention/key_sets.h"
#include "attention/kv_view.h"
#include "attention/layer_schedule.h"
#include "model/model_config.h"

namespace deltainfer::attention {

class CpuAttention {
 public:
  // Validates `config` against the model; threads >= 1.
  CpuAttention(const AttentionConfig& config, const model::ModelConfig& model, int threads);

  // q, out: [n_tokens][n_heads][head_dim] at positions first_pos..; kv holds at least
  // first_pos + n_tokens positions. prompt_end (>= first_pos + n_tokens): one past the last row of
  // the whole prefill this chunk belongs to (where Δ's dense tail ends).
  void prefill(int layer, const float* q, int64_t n_tokens, int64_t first_pos, int64_t prompt_end, const KvView& kv,
               float* out);
  // q, out: [n_heads][head_dim] of the token at `pos`; kv holds positions 0..pos.
  void decode(int layer, const float* q, int64_t pos, const KvView& kv, float* out);

  // A new sequence: forgets the Δ carry of prefill and the decode selection (not the fidelity).
  void reset();

  const AttentionConfig& config() const { return config_; }
  const LayerSchedule& schedule() const { return schedule_; }
  // Keys the latest Δ-layer selected in the current decode step (DELTA / Tidal).
  const std::vector<KeyRange>& selection() const { return decode_policy_->selection(); }
  const FidelityReport& fidelity() const { return fidelity_; }
  void clear_fidelity() { fidelity_.clear(); }

  // Sees every decode() call: the layer, the token's q ([n_heads][head_dim]) at `pos`, the cache
  // and each query head's key set. Tests use it to feed another backend the very same inputs (the
  // GPU Quest selection test); unset: nothing happens.
  using DecodeObserver = std::function<void(int layer, const float* q, int64_t pos, const KvView& kv,
                                            const std::vector<KeySet>& keys)>;
  void set_decode_observer(DecodeObserver observer) { decode_observer_ = std::move(observer); }

 private:
  using KeysFor = CpuPrefillPolicy::KeysFor;

  // Runs `keys` over all heads and query blocks (query_block_rows() rows each, counted from
  // first_pos); returns the attended (row, head, key) count.
  int64_t run_prefill(const KeysFor& keys, const float* q, int64_t n_tokens, int64_t first_pos, const KvView& kv,
                      float* out);
  // The prefill method's query blocks (vertical-slash: the GPU kernel's, its key sets depend on
  // the block; any other method's sets are exact per row, and `block` only sets the work split).
  int64_t query_block_rows() const { return prefill_policy_->query_block_rows(); }
  void correct_with_delta(int layer, const float* q, int64_t n_tokens, int64_t first_pos, const KvView& kv,
                          float* out);
  // Dense rows for the part of the chunk in Δ's dense tail; returns the attended count.
  int64_t attend_dense_tail(const float* q, int64_t n_tokens, int64_t first_pos, int64_t prompt_end,
                            const KvView& kv, float* out);
  void record_prefill(int layer, const float* q, int64_t n_tokens, int64_t first_pos, const KvView& kv,
                      const float* out, int64_t attended);

  // Full and DeltaSelect layers attend densely; Sparse layers ask the decode method's policy.
  std::vector<KeySet> decode_keys(const DecodeQuery& query);
  void record_decode(int layer, const float* q, int64_t pos, const KvView& kv, const std::vector<KeySet>& keys,
                     const float* out, int64_t attended);

  AttentionConfig config_;
  HeadShape shape_;
  LayerSchedule schedule_;
  int threads_;
  std::vector<KernelScratch> scratch_;     // one per thread
  std::vector<DeltaCarry> carry_;          // per layer
  std::unique_ptr<CpuPrefillPolicy> prefill_policy_;  // the prefill method's (method_registry.h)
  std::unique_ptr<CpuDecodePolicy> decode_policy_;    // the decode method's
  FidelityReport fidelity_;
  DecodeObserver decode_observer_;
};

}  // namespace deltainfer::attention
