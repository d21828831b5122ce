#include "backend/cpu/cpu_transformer.h"

#include <algorithm>
#include <cstring>
#include <thread>

#include "backend/cpu/ops.h"
#include "core/error.h"

namespace deltainfer::backend::cpu {
namespace {

size_t as_size(int64_t value) { return static_cast<size_t>(value); }

int resolve_threads(int requested) {
  if (requested > 0) return requested;
  return std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
}

}  // namespace

CpuTransformer::CpuTransformer(const model::ModelSource& source, const attention::AttentionConfig& attention,
                               const CpuTransformerOptions& options)
    : config_(source.config()),
      weights_(CpuWeights::load(source, weight_storage_from_env(), resolve_threads(options.threads))),
      capacity_(options.capacity),
      prefill_chunk_(std::max<int64_t>(1, options.prefill_chunk)) {
  if (capacity_ <= 0 || capacity_ > config_.context_length) {
    throw_input_error("KV cache capacity {} is outside the model's context (1..{})", capacity_,
                      config_.context_length);
  }
  attention_ = std::make_unique<attention::CpuAttention>(attention, config_, resolve_threads(options.threads));
  inv_freq_.resize(as_size(config_.head_dim / 2));
  rope_inverse_frequencies(config_, inv_freq_.data());
  const size_t per_layer = as_size(config_.kv_dim()) * as_size(capacity_);
  k_cache_.assign(as_size(config_.n_layers), std::vector<float>(per_layer));
  v_cache_.assign(as_size(config_.n_layers), std::vector<float>(per_layer));
}

void CpuTransformer::truncate(int64_t n_tokens) {
  if (n_tokens < 0 || n_tokens > cached_) throw_error("cannot truncate the KV cache to {} of {}", n_tokens, cached_);
  cached_ = n_tokens;
  if (n_tokens == 0) attention_->reset();
}

void CpuTransformer::forward(const int32_t* tokens, int64_t n, model::LogitsFor which, float* logits) {
  model::check_forward_tokens(config_, cached_, capacity_, tokens, n);
  const size_t vocab = as_size(config_.vocab_size);
  const int64_t prompt_end = cached_ + n;
  const bool is_decode = n == 1 && cached_ > 0;
  for (int64_t start = 0; start < n; start += prefill_chunk_) {
    const int64_t count = std::min(prefill_chunk_, n - start);
    const bool last_chunk = start + count == n;
    if (which == model::LogitsFor::AllTokens) {
      forward_chunk(tokens + start, count, prompt_end, is_decode, which, logits + as_size(start) * vocab);
    } else {
      forward_chunk(tokens + start, count, prompt_end, is_decode, which, last_chunk ? logits : nullptr);
    }
  }
}

void CpuTransformer::forward_chunk(const int32_t* tokens, int64_t n, int64_t prompt_end, bool is_decode,
                                   model::LogitsFor which, float* logits) {
  const int64_t d = config_.d_model;
  s_.x.resize(as_size(n * d));
  for (int64_t t = 0; t < n; ++t) {
    std::memcpy(s_.x.data() + t * d, weights_.token_embd.data() + int64_t{tokens[t]} * d, as_size(d) * sizeof(float));
  }
  for (int layer = 0; layer < config_.n_layers; ++layer) {
    attention_block(layer, n, prompt_end, is_decode);
    feed_forward_block(layer, n);
  }
  cached_ += n;
  if (logits == nullptr) return;
  const int64_t rows = which == model::LogitsFor::AllTokens ? n : 1;
  compute_logits(s_.x.data() + (n - rows) * d, rows, logits);
}

void CpuTransformer::attention_block(int layer, int64_t n, int64_t prompt_end, bool is_decode) {
  const LayerWeights& w = weights_.layers[as_size(layer)];
  const int64_t d = config_.d_model, q_dim = config_.q_dim(), kv_dim = config_.kv_dim();
  s_.normed.resize(as_size(n * d));
  s_.q.resize(as_size(n * q_dim));
  s_.k.resize(as_size(n * kv_dim));
  s_.v.resize(as_size(n * kv_dim));
  s_.attn.resize(as_size(n * q_dim));
  s_.proj.resize(as_size(n * d));

  rmsnorm(s_.x.data(), w.attn_norm.data(), s_.normed.data(), n, d, config_.rms_eps);
  matmul(s_.normed.data(), w.wq, w.bq.empty() ? nullptr : w.bq.data(), s_.q.data(), n, weights_.threads);
  matmul(s_.normed.data(), w.wk, w.bk.empty() ? nullptr : w.bk.data(), s_.k.data(), n, weights_.threads);
  matmul(s_.normed.data(), w.wv, w.bv.empty() ? nullptr : w.bv.data(), s_.v.data(), n, weights_.threads);
  if (config_.qk_norm) {
    rmsnorm(s_.q.data(), w.q_norm.data(), s_.q.data(), n * config_.n_heads, config_.head_dim, config_.rms_eps);
    rmsnorm(s_.k.data(), w.k_norm.data(), s_.k.data(), n * config_.n_kv_heads, config_.head_dim, config_.rms_eps);
  }
  apply_rope(s_.q.data(), n, config_.n_heads, config_.head_dim, cached_, inv_freq_.data(), config_.rope_style);
  apply_rope(s_.k.data(), n, config_.n_kv_heads, config_.head_dim, cached_, inv_freq_.data(), config_.rope_style);
  append_kv(layer, n);

  const attention::KvView kv{k_cache_[as_size(layer)].data(), v_cache_[as_size(layer)].data(), capacity_,
                             cached_ + n};
  if (is_decode) {
    attention_->decode(layer, s_.q.data(), cached_, kv, s_.attn.data());
  } else {
    attention_->prefill(layer, s_.q.data(), n, cached_, prompt_end, kv, s_.attn.data());
  }
  matmul(s_.attn.data(), w.wo, nullptr, s_.proj.data(), n, weights_.threads);
  add_in_place(s_.x.data(), s_.proj.data(), n * d);
}

void CpuTransformer::append_kv(int layer, int64_t n) {
  const int64_t head_dim = config_.head_dim;
  float* k_cache = k_cache_[as_size(layer)].data();
  float* v_cache = v_cache_[as_size(layer)].data();
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t h = 0; h < config_.n_kv_heads; ++h) {
      const int64_t dst = (h * capacity_ + cached_ + t) * head_dim;
      const int64_t src = (t * config_.n_kv_heads + h) * head_dim;
      std::memcpy(k_cache + dst, s_.k.data() + src, as_size(head_dim) * sizeof(float));
      std::memcpy(v_cache + dst, s_.v.data() + src, as_size(head_dim) * sizeof(float));
    }
  }
}

void CpuTransformer::feed_forward_block(int layer, int64_t n) {
  const LayerWeights& w = weights_.layers[as_size(layer)];
  const int64_t d = config_.d_model, ffn = config_.ffn_dim;
  s_.gate.resize(as_size(n * ffn));
  s_.up.resize(as_size(n * ffn));
  rmsnorm(s_.x.data(), w.ffn_norm.data(), s_.normed.data(), n, d, config_.rms_eps);
  matmul(s_.normed.data(), w.w_gate, nullptr, s_.gate.data(), n, weights_.threads);
  matmul(s_.normed.data(), w.w_up, nullptr, s_.up.data(), n, weights_.threads);
  swiglu(s_.gate.data(), s_.up.data(), n * ffn);
  matmul(s_.gate.data(), w.w_down, nullptr, s_.proj.data(), n, weights_.threads);
  add_in_place(s_.x.data(), s_.proj.data(), n * d);
}

void CpuTransformer::compute_logits(const float* hidden, int64_t rows, float* logits) {
  const int64_t d = config_.d_model;
  std::vector<float> normed(as_size(rows * d));
  rmsnorm(hidden, weights_.output_norm.data(), normed.data(), rows, d, config_.rms_eps);
  matmul(normed.data(), weights_.output, nullptr, logits, rows, weights_.threads);
}

}  // namespace deltainfer::backend::cpu
