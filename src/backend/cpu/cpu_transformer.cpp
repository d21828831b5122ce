#include "backend/cpu/cpu_transformer.h"

#include <algorithm>
#include <cstring>
#include <thread>

#include "backend/cpu/ops.h"
#include "core/error.h"
#include "runtime/token_nll.h"

namespace deltainfer::backend::cpu {
namespace {

size_t as_size(int64_t value) { return static_cast<size_t>(value); }

int resolve_threads(int requested) {
  if (requested > 0) return requested;
  return std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
}

int64_t check_capacity(int64_t capacity, const model::ModelConfig& config) {
  if (capacity <= 0 || capacity > config.context_length) {
    throw_input_error("KV cache capacity {} is outside the model's context (1..{})", capacity, config.context_length);
  }
  return capacity;
}

int32_t pool_pages(const runtime::BackendOptions& options) {
  const int64_t pages = runtime::requested_pool_pages(options);
  if (pages > INT32_MAX) throw_input_error("a KV pool of {} pages is more than this engine addresses", pages);
  return static_cast<int32_t>(pages);
}

}  // namespace

CpuTransformer::CpuTransformer(const model::ModelSource& source, const runtime::BackendOptions& options)
    : config_(source.config()),
      weights_(CpuWeights::load(source)),
      threads_(resolve_threads(options.threads)),
      prefill_chunk_(std::max<int64_t>(1, options.prefill_chunk)),
      max_batch_tokens_(prefill_chunk_ + std::max(1, options.max_batch) - 1),
      sequences_(pool_pages(options), check_capacity(options.capacity, config_), config_.vocab_size) {
  inv_freq_.resize(as_size(config_.head_dim / 2));
  rope_inverse_frequencies(config_, inv_freq_.data());
  const size_t per_layer = as_size(sequences_.usage().total_pages) * as_size(config_.kv_dim()) * as_size(kKvPageTokens);
  k_pool_.assign(as_size(config_.n_layers), std::vector<float>(per_layer));
  v_pool_.assign(as_size(config_.n_layers), std::vector<float>(per_layer));
  default_sequence_ = open_sequence(options.attention);
}

runtime::SequenceId CpuTransformer::open_sequence(const attention::AttentionConfig& method) {
  auto policy = std::make_unique<attention::CpuAttention>(method, config_, threads_);  // validates the method
  const runtime::SequenceId id = sequences_.open(method);
  attention_[id] = std::move(policy);
  return id;
}

void CpuTransformer::close_sequence(runtime::SequenceId id) {
  sequences_.close(id);
  attention_.erase(id);
}

void CpuTransformer::truncate_sequence(runtime::SequenceId id, int64_t length) {
  sequences_.truncate(id, length);
  if (length == 0) attention_.at(id)->reset();
}

// A fresh policy: the new method's decode starts without the old one's selection, as a new
// sequence's would (the Δ carry of the prefill is not read after it).
void CpuTransformer::set_sequence_method(runtime::SequenceId id, const attention::AttentionConfig& method) {
  auto policy = std::make_unique<attention::CpuAttention>(method, config_, threads_);  // validates the method
  sequences_.set_method(id, method);
  attention_.at(id) = std::move(policy);
}

void CpuTransformer::forward(const runtime::BatchPlan& plan) {
  for (const runtime::BatchEntry& entry : plan.entries) {
    if (entry.sampling != nullptr) throw_error("the CPU backend samples on the host: ask it for logits");
  }
  sequences_.reserve(plan, max_batch_tokens_);
  const int64_t rows = plan.total_tokens();
  embed(plan, rows);
  for (int layer = 0; layer < config_.n_layers; ++layer) {
    attention_block(layer, plan, rows);
    feed_forward_block(layer, rows);
  }
  sequences_.commit(plan);
  write_logits(plan);
}

void CpuTransformer::embed(const runtime::BatchPlan& plan, int64_t rows) {
  const int64_t d = config_.d_model;
  s_.x.resize(as_size(rows * d));
  float* row = s_.x.data();
  for (const runtime::BatchEntry& entry : plan.entries) {
    for (int64_t t = 0; t < entry.n_tokens; ++t, row += d) {
      embedding_row(weights_.token_embd, entry.tokens[t], row);
    }
  }
}

void CpuTransformer::attention_block(int layer, const runtime::BatchPlan& plan, int64_t n) {
  const LayerWeights& w = weights_.layers[as_size(layer)];
  const int64_t d = config_.d_model, q_dim = config_.q_dim(), kv_dim = config_.kv_dim();
  s_.normed.resize(as_size(n * d));
  s_.q.resize(as_size(n * q_dim));
  s_.k.resize(as_size(n * kv_dim));
  s_.v.resize(as_size(n * kv_dim));
  s_.attn.resize(as_size(n * q_dim));
  s_.proj.resize(as_size(n * d));

  rmsnorm(s_.x.data(), w.attn_norm.data(), s_.normed.data(), n, d, config_.rms_eps);
  matmul_shared_input(s_.normed.data(), n,
                      {{w.wq, w.bq.empty() ? nullptr : w.bq.data(), s_.q.data()},
                       {w.wk, w.bk.empty() ? nullptr : w.bk.data(), s_.k.data()},
                       {w.wv, w.bv.empty() ? nullptr : w.bv.data(), s_.v.data()}},
                      threads_);
  if (config_.qk_norm) {
    rmsnorm(s_.q.data(), w.q_norm.data(), s_.q.data(), n * config_.n_heads, config_.head_dim, config_.rms_eps);
    rmsnorm(s_.k.data(), w.k_norm.data(), s_.k.data(), n * config_.n_kv_heads, config_.head_dim, config_.rms_eps);
  }
  int64_t first_row = 0;
  for (const runtime::BatchEntry& entry : plan.entries) {
    rope_and_append_kv(layer, entry, first_row);
    attend(layer, entry, first_row);
    first_row += entry.n_tokens;
  }
  matmul(s_.attn.data(), w.wo, nullptr, s_.proj.data(), n, threads_);
  add_in_place(s_.x.data(), s_.proj.data(), n * d);
}

void CpuTransformer::rope_and_append_kv(int layer, const runtime::BatchEntry& entry, int64_t first_row) {
  const runtime::Sequence& sequence = sequences_.at(entry.sequence);
  const int64_t head_dim = config_.head_dim, n = entry.n_tokens;
  float* q = s_.q.data() + first_row * config_.q_dim();
  float* k = s_.k.data() + first_row * config_.kv_dim();
  const float* v = s_.v.data() + first_row * config_.kv_dim();
  apply_rope(q, n, config_.n_heads, head_dim, sequence.length, inv_freq_.data(), config_.rope_style);
  apply_rope(k, n, config_.n_kv_heads, head_dim, sequence.length, inv_freq_.data(), config_.rope_style);
  const attention::KvView pages{k_pool_[as_size(layer)].data(), v_pool_[as_size(layer)].data(), sequence.pages.data(),
                                config_.n_kv_heads, config_.head_dim, sequence.length + n};
  float* k_pool = k_pool_[as_size(layer)].data();
  float* v_pool = v_pool_[as_size(layer)].data();
  for (int64_t t = 0; t < n; ++t) {
    for (int h = 0; h < config_.n_kv_heads; ++h) {
      const int64_t dst = pages.offset(h, sequence.length + t), src = (t * config_.n_kv_heads + h) * head_dim;
      std::memcpy(k_pool + dst, k + src, as_size(head_dim) * sizeof(float));
      std::memcpy(v_pool + dst, v + src, as_size(head_dim) * sizeof(float));
    }
  }
}

void CpuTransformer::attend(int layer, const runtime::BatchEntry& entry, int64_t first_row) {
  const runtime::Sequence& sequence = sequences_.at(entry.sequence);
  const int64_t first_pos = sequence.length, n = entry.n_tokens;
  const attention::KvView kv{k_pool_[as_size(layer)].data(), v_pool_[as_size(layer)].data(), sequence.pages.data(),
                             config_.n_kv_heads, config_.head_dim, first_pos + n};
  const float* q = s_.q.data() + first_row * config_.q_dim();
  float* out = s_.attn.data() + first_row * config_.q_dim();
  attention::CpuAttention& policy = *attention_.at(entry.sequence);
  if (entry.decode) {
    policy.decode(layer, q, first_pos, kv, out);
  } else {
    const int64_t prompt_end = entry.prompt_end > 0 ? entry.prompt_end : first_pos + n;
    policy.prefill(layer, q, n, first_pos, prompt_end, kv, out);
  }
}

void CpuTransformer::feed_forward_block(int layer, int64_t n) {
  const LayerWeights& w = weights_.layers[as_size(layer)];
  const int64_t d = config_.d_model, ffn = config_.ffn_dim;
  s_.gate.resize(as_size(n * ffn));
  s_.up.resize(as_size(n * ffn));
  rmsnorm(s_.x.data(), w.ffn_norm.data(), s_.normed.data(), n, d, config_.rms_eps);
  matmul_shared_input(s_.normed.data(), n, {{w.w_gate, nullptr, s_.gate.data()}, {w.w_up, nullptr, s_.up.data()}},
                      threads_);
  swiglu(s_.gate.data(), s_.up.data(), n * ffn);
  matmul(s_.gate.data(), w.w_down, nullptr, s_.proj.data(), n, threads_);
  add_in_place(s_.x.data(), s_.proj.data(), n * d);
}

void CpuTransformer::write_logits(const runtime::BatchPlan& plan) {
  int64_t first_row = 0;
  for (const runtime::BatchEntry& entry : plan.entries) {
    const int64_t rows = runtime::logit_rows(entry);
    if (rows > 0) {
      compute_logits(s_.x.data() + (first_row + entry.n_tokens - rows) * config_.d_model, rows, entry.logits_out);
    } else if (entry.logits == runtime::LogitsFor::TokenNlls) {
      // The entry's logits in one product, as AllTokens computes them (the quantized matmul picks
      // its kernel by row count), so the NLLs are those of AllTokens' logits to the bit. Freed
      // after the entry: the memory AllTokens asked of the caller, held no longer than it was.
      std::vector<float> logits(as_size(entry.n_tokens) * as_size(config_.vocab_size));
      compute_logits(s_.x.data() + first_row * config_.d_model, entry.n_tokens, logits.data());
      runtime::token_nlls_of_rows(logits.data(), entry.n_tokens, config_.vocab_size, entry.targets, entry.nlls_out);
    }
    first_row += entry.n_tokens;
  }
}

void CpuTransformer::compute_logits(const float* hidden, int64_t rows, float* logits) {
  const int64_t d = config_.d_model;
  std::vector<float> normed(as_size(rows * d));
  rmsnorm(hidden, weights_.output_norm.data(), normed.data(), rows, d, config_.rms_eps);
  matmul(normed.data(), weights_.output_weight(), nullptr, logits, rows, threads_);
}

}  // namespace deltainfer::backend::cpu
