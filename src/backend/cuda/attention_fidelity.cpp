#include "backend/cuda/attention_fidelity.h"

#include <algorithm>

#include "attention/delta_correction.h"
#include "attention/method_registry.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/fidelity_cosine.h"
#include "core/error.h"

namespace deltainfer::cuda {
namespace {

size_t as_size(int64_t value) { return static_cast<size_t>(value); }

// Keys (per head) that rows [begin, end) attend when each row i attends min(i + 1, kept) of them.
int64_t capped_causal_pairs(int64_t begin, int64_t end, int64_t kept) {
  int64_t pairs = 0;
  for (int64_t i = begin; i < end; ++i) pairs += std::min(i + 1, kept);
  return pairs;
}

int64_t causal_pairs(int64_t begin, int64_t end) { return capped_causal_pairs(begin, end, INT64_MAX); }

}  // namespace

CudaPrefillFidelity::CudaPrefillFidelity(const attention::AttentionConfig& config, const model::ModelConfig& model,
                                         int64_t max_chunk)
    : config_(config),
      n_heads_(model.n_heads),
      head_dim_(model.head_dim),
      max_chunk_(max_chunk),
      counts_(model.n_layers, attention::describe(config)) {
  // attended_pairs() knows the key counts of these two; vslash's depend on the data (the GPU
  // kernel picks the blocks), so they are not known on the host.
  if (config.prefill.kind != attention::PrefillKind::Dense && config.prefill.kind != attention::PrefillKind::Sliding) {
    throw_input_error("--fidelity on --backend cuda reports dense and sliding prefill (with or without +delta), not "
                      "{}; use --backend cpu", attention::prefill_kind_name(config.prefill.kind));
  }
  dense_out_ = DeviceBuffer<__nv_bfloat16>(as_size(max_chunk * n_heads_ * head_dim_));
  // Sum 0 and minimum 1 per layer: LayerFidelity's starting values.
  std::vector<double> start(as_size(2 * int64_t{model.n_layers}));
  for (size_t layer = 0; layer < start.size() / 2; ++layer) start[2 * layer + 1] = 1.0;
  accumulators_ = to_device(start);
  workspace_ = DeviceBuffer<double>(as_size(kCosineStatsWorkspaceDoubles));
}

size_t CudaPrefillFidelity::device_bytes() const {
  return dense_out_.bytes() + accumulators_.bytes() + workspace_.bytes();
}

// CpuAttention::prefill's count: the method's keys for every row of the chunk; with Δ also the
// strided rows' dense keys and the dense tail's (the tail rows counted again, as there).
int64_t CudaPrefillFidelity::attended_pairs(int64_t first_pos, int64_t n, int64_t prompt_end) const {
  const int64_t end = first_pos + n;
  // Dense: row i admits i + 1 keys; sliding keeps the sink and the window (KeyRule): min(i + 1,
  // sink + window), its kept_keys (window >= 1).
  const int64_t kept = attention::prefill_method(config_.prefill.kind).kept_keys(config_).value_or(INT64_MAX);
  int64_t pairs = capped_causal_pairs(first_pos, end, kept);
  if (config_.prefill.delta) {
    const attention::StridedRows strided = attention::strided_rows(config_.prefill.gamma, first_pos, n);
    for (int64_t s = 0; s < strided.count; ++s) pairs += strided.first + s * config_.prefill.gamma + 1;
    const attention::RowRange tail = attention::dense_tail_rows(config_.prefill, first_pos, n, prompt_end);
    pairs += causal_pairs(tail.begin, tail.end);
  }
  return pairs * n_heads_;
}

void CudaPrefillFidelity::record(int layer, const PrefillAttentionArgs& chunk, int64_t prompt_end,
                                 cudaStream_t stream) {
  if (layer < 0 || layer >= counts_.n_layers() || chunk.n_q < 1 || chunk.n_q > max_chunk_ || chunk.q_pos != nullptr) {
    throw_error("fidelity: layer {} chunk of {} rows (scratch for {}, contiguous rows only)", layer, chunk.n_q,
                max_chunk_);
  }
  PrefillAttentionArgs dense = chunk;
  dense.out = dense_out_.data();
  dense.lse = nullptr;
  prefill_attention(dense, stream);
  CosineStatsArgs stats;
  stats.a = chunk.out;
  stats.b = dense_out_.data();
  stats.pairs = int64_t{chunk.n_q} * n_heads_;
  stats.head_dim = head_dim_;
  stats.accumulator = accumulators_.data() + 2 * layer;
  stats.workspace = workspace_.data();
  accumulate_cosine_stats(stats, stream);

  attention::LayerFidelity& f = counts_.at(attention::Phase::Prefill, layer);
  ++f.calls;
  f.query_heads += stats.pairs;
  f.attended += attended_pairs(chunk.first_pos, chunk.n_q, prompt_end);
  f.dense_attended += causal_pairs(chunk.first_pos, chunk.first_pos + chunk.n_q) * n_heads_;
}

attention::FidelityReport CudaPrefillFidelity::report() const {
  CUDA_CHECK(cudaDeviceSynchronize());  // the accumulators are written on the transformer's stream
  const std::vector<double> cosines = accumulators_.download();
  attention::FidelityReport report = counts_;
  for (int layer = 0; layer < report.n_layers(); ++layer) {
    attention::LayerFidelity& f = report.at(attention::Phase::Prefill, layer);
    f.cosine_sum = cosines[2 * as_size(layer)];
    f.cosine_min = cosines[2 * as_size(layer) + 1];
  }
  return report;
}

nlohmann::json CudaPrefillFidelity::to_json() const {
  nlohmann::json json = report().to_json();
  json["backend"] = "cuda";
  json["decode_instrumented"] = false;  // decode cosine and recall: --backend cpu
  return json;
}

}  // namespace deltainfer::cuda
