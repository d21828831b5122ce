#include "attention/cpu_attention.h"

#include <algorithm>
#include <numeric>

#include "attention/method_registry.h"
#include "attention/parallel_for.h"
#include "core/error.h"

namespace deltainfer::attention {
namespace {

HeadShape head_shape(const model::ModelConfig& model) { return {model.n_heads, model.n_kv_heads, model.head_dim}; }

int64_t sum(const std::vector<int64_t>& values) { return std::accumulate(values.begin(), values.end(), int64_t{0}); }

// Dense attention of rows first_pos..first_pos+n-1 attends to sum_i (i + 1) keys per head.
int64_t dense_pairs(int64_t first_pos, int64_t n) { return n * first_pos + n * (n + 1) / 2; }

// Dense probability mass of one head's row on the keys of `keys` admitted at `pos`.
double captured_mass(const float* dense_probabilities, const KeySet& keys, int64_t pos) {
  double mass = 0;
  for (const KeyRange& range : keys.ranges) {
    for (int64_t j = range.begin; j < std::min(range.end, pos + 1); ++j) {
      if (keys.rule.admits(pos, j)) mass += dense_probabilities[j];
    }
  }
  return mass;
}

}  // namespace

CpuAttention::CpuAttention(const AttentionConfig& config, const model::ModelConfig& model, int threads)
    : config_(config),
      shape_(head_shape(model)),
      schedule_(config.decode, model.n_layers),
      threads_(std::max(1, threads)),
      scratch_(static_cast<size_t>(threads_)),
      carry_(static_cast<size_t>(model.n_layers)),
      fidelity_(model.n_layers, describe(config)) {
  config_.validate(model.n_layers);
  prefill_policy_ = prefill_method(config_.prefill.kind).cpu_policy(config_, shape_);
  decode_policy_ = decode_method(config_.decode.kind).cpu_policy(config_, shape_);
}

void CpuAttention::reset() {
  std::fill(carry_.begin(), carry_.end(), DeltaCarry{});
  decode_policy_->reset();
}

// ---- prefill ----

void CpuAttention::prefill(int layer, const float* q, int64_t n_tokens, int64_t first_pos, int64_t prompt_end,
                           const KvView& kv, float* out) {
  if (layer < 0 || layer >= schedule_.n_layers() || n_tokens <= 0 || first_pos < 0 ||
      kv.length < first_pos + n_tokens || prompt_end < first_pos + n_tokens) {
    throw_error("attention prefill: layer {} with {} tokens at {} over a KV of {} positions is out of range", layer,
                n_tokens, first_pos, kv.length);
  }
  const KeysFor keys = prefill_policy_->keys(PrefillChunk{q, n_tokens, first_pos, kv}, CpuWorkers{threads_, scratch_});
  int64_t attended = run_prefill(keys, q, n_tokens, first_pos, kv, out);
  if (config_.prefill.delta) {
    correct_with_delta(layer, q, n_tokens, first_pos, kv, out);
    const StridedRows strided = strided_rows(config_.prefill.gamma, first_pos, n_tokens);
    for (int64_t s = 0; s < strided.count; ++s) attended += (strided.first + s * config_.prefill.gamma + 1) * shape_.n_heads;
    attended += attend_dense_tail(q, n_tokens, first_pos, prompt_end, kv, out);
  }
  if (config_.instrument) record_prefill(layer, q, n_tokens, first_pos, kv, out, attended);
}

int64_t CpuAttention::run_prefill(const KeysFor& keys, const float* q, int64_t n_tokens, int64_t first_pos,
                                  const KvView& kv, float* out) {
  const int64_t rows = query_block_rows(), end = first_pos + n_tokens, stride = shape_.q_row_stride();
  const int64_t blocks = (n_tokens + rows - 1) / rows;
  std::vector<int64_t> attended(static_cast<size_t>(blocks * shape_.n_heads));
  parallel_for(blocks * shape_.n_heads, threads_, [&](int64_t task, int worker) {
    const int head = static_cast<int>(task % shape_.n_heads);
    const int64_t i0 = first_pos + task / shape_.n_heads * rows, i1 = std::min(end, i0 + rows);
    const KeySet set = keys(head, i0, i1);
    const int64_t offset = (i0 - first_pos) * stride + int64_t{head} * shape_.head_dim;
    attended[static_cast<size_t>(task)] = attend(shape_, kv, head, {q + offset, stride, i0, i1 - i0}, set.ranges,
                                                 set.rule, {out + offset, stride}, scratch_[static_cast<size_t>(worker)]);
  });
  return sum(attended);
}

void CpuAttention::correct_with_delta(int layer, const float* q, int64_t n_tokens, int64_t first_pos,
                                      const KvView& kv, float* out) {
  const int64_t gamma = config_.prefill.gamma, stride = shape_.q_row_stride(), d = shape_.head_dim;
  const StridedRows strided = strided_rows(gamma, first_pos, n_tokens);
  std::vector<float> dense(static_cast<size_t>(strided.count * stride));
  parallel_for(strided.count * shape_.n_heads, threads_, [&](int64_t task, int worker) {
    const int head = static_cast<int>(task % shape_.n_heads);
    const int64_t s = task / shape_.n_heads, row = strided.first + s * gamma;
    const KeySet set = dense_keys(row + 1);
    attend(shape_, kv, head, {q + (row - first_pos) * stride + head * d, stride, row, 1}, set.ranges, set.rule,
           {dense.data() + s * stride + head * d, stride}, scratch_[static_cast<size_t>(worker)]);
  });
  apply_delta_correction(config_.prefill, stride, first_pos, n_tokens, dense.data(), out,
                         carry_[static_cast<size_t>(layer)]);
}

int64_t CpuAttention::attend_dense_tail(const float* q, int64_t n_tokens, int64_t first_pos, int64_t prompt_end,
                                       const KvView& kv, float* out) {
  const RowRange tail = dense_tail_rows(config_.prefill, first_pos, n_tokens, prompt_end);
  if (tail.begin == tail.end) return 0;
  const int64_t offset = (tail.begin - first_pos) * shape_.q_row_stride();
  return run_prefill([](int, int64_t, int64_t i1) { return dense_keys(i1); }, q + offset, tail.end - tail.begin,
                     tail.begin, kv, out + offset);
}

void CpuAttention::record_prefill(int layer, const float* q, int64_t n_tokens, int64_t first_pos, const KvView& kv,
                                  const float* out, int64_t attended) {
  const int64_t stride = shape_.q_row_stride(), d = shape_.head_dim;
  std::vector<float> dense(static_cast<size_t>(n_tokens * stride));
  run_prefill([](int, int64_t, int64_t i1) { return dense_keys(i1); }, q, n_tokens, first_pos, kv, dense.data());
  LayerFidelity& f = fidelity_.at(Phase::Prefill, layer);
  ++f.calls;
  f.query_heads += n_tokens * shape_.n_heads;
  f.attended += attended;
  f.dense_attended += dense_pairs(first_pos, n_tokens) * shape_.n_heads;
  for (int64_t t = 0; t < n_tokens; ++t) {
    for (int head = 0; head < shape_.n_heads; ++head) {
      const int64_t offset = t * stride + head * d;
      f.add_cosine(cosine_similarity(out + offset, dense.data() + offset, d));
    }
  }
}

// ---- decode ----

void CpuAttention::decode(int layer, const float* q, int64_t pos, const KvView& kv, float* out) {
  if (layer < 0 || layer >= schedule_.n_layers() || pos < 0 || kv.length < pos + 1) {
    throw_error("attention decode: layer {} at position {} over a KV of {} positions is out of range", layer, pos,
                kv.length);
  }
  const DecodeQuery query{layer, q, pos, kv};
  const bool selects = schedule_.role(layer) == LayerRole::DeltaSelect;
  const std::vector<KeySet> keys = decode_keys(query);
  std::vector<float> probabilities(selects ? static_cast<size_t>(shape_.n_heads * (pos + 1)) : 0);
  std::vector<int64_t> attended(static_cast<size_t>(shape_.n_heads));
  if (schedule_.role(layer) != LayerRole::Sparse) {
    // Every head attends to the same dense keys: one task per KV head reads K and V once for its
    // query heads (exact_kernel.h; the same outputs as per head, bit for bit).
    const KeySet& dense = keys.front();
    parallel_for(shape_.n_kv_heads, threads_, [&](int64_t g, int worker) {
      attended[static_cast<size_t>(g)] =
          attend_decode_group(shape_, kv, static_cast<int>(g), q, pos, dense.ranges, dense.rule, out,
                              scratch_[static_cast<size_t>(worker)], selects ? probabilities.data() : nullptr);
    });
  } else {
    parallel_for(shape_.n_heads, threads_, [&](int64_t h, int worker) {
      const KeySet& set = keys[static_cast<size_t>(h)];
      const int64_t offset = h * shape_.head_dim;
      attended[static_cast<size_t>(h)] =
          attend(shape_, kv, static_cast<int>(h), {q + offset, shape_.head_dim, pos, 1}, set.ranges, set.rule,
                 {out + offset, shape_.head_dim}, scratch_[static_cast<size_t>(worker)],
                 selects ? probabilities.data() + h * (pos + 1) : nullptr);
    });
  }
  if (selects) decode_policy_->select(query, probabilities.data());
  if (config_.instrument) record_decode(layer, q, pos, kv, keys, out, sum(attended));
  if (decode_observer_) decode_observer_(layer, q, pos, kv, keys);
}

std::vector<KeySet> CpuAttention::decode_keys(const DecodeQuery& query) {
  if (schedule_.role(query.layer) == LayerRole::Sparse) return decode_policy_->sparse_keys(query);
  return std::vector<KeySet>(static_cast<size_t>(shape_.n_heads), dense_keys(query.pos + 1));
}

void CpuAttention::record_decode(int layer, const float* q, int64_t pos, const KvView& kv,
                                 const std::vector<KeySet>& keys, const float* out, int64_t attended) {
  const int64_t length = pos + 1, d = shape_.head_dim;
  std::vector<float> dense(static_cast<size_t>(shape_.n_heads * d));
  std::vector<float> probabilities(static_cast<size_t>(shape_.n_heads * length));
  parallel_for(shape_.n_heads, threads_, [&](int64_t h, int worker) {
    attend(shape_, kv, static_cast<int>(h), {q + h * d, d, pos, 1}, {{0, length}}, KeyRule{},
           {dense.data() + h * d, d}, scratch_[static_cast<size_t>(worker)], probabilities.data() + h * length);
  });
  LayerFidelity& f = fidelity_.at(Phase::Decode, layer);
  ++f.calls;
  f.query_heads += shape_.n_heads;
  f.attended += attended;
  f.dense_attended += length * shape_.n_heads;
  for (int h = 0; h < shape_.n_heads; ++h) {
    f.add_cosine(cosine_similarity(out + h * d, dense.data() + h * d, d));
    f.add_recall(captured_mass(probabilities.data() + h * length, keys[static_cast<size_t>(h)], pos));
  }
}

}  // namespace deltainfer::attention
