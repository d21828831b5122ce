#include "backend/cuda/cuda_attention.h"

#include <algorithm>
#include <cmath>

#include "attention/delta_correction.h"
#include "attention/vertical_slash.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/delta_correct.h"
#include "backend/cuda/methods/decode_calls.h"
#include "core/error.h"

namespace deltainfer::cuda {
namespace {

static_assert(kSparseQueryBlock == attention::kVerticalSlashQueryBlock,
              "the CPU twin must cut vslash chunks into the GPU kernel's query blocks");

size_t as_size(int64_t value) { return static_cast<size_t>(value); }

// The prefill half of a method's description: equal for methods that prefill alike (an
// instrumented method records its own prefill, so it shares with no other).
std::string prefill_description(const attention::AttentionConfig& config) {
  attention::AttentionConfig prefill_only = config;
  prefill_only.decode = attention::DecodeConfig{};
  return attention::describe(prefill_only) + (config.instrument ? " (instrumented)" : "");
}

DeltaMode delta_mode(attention::DeltaVariant variant) {
  switch (variant) {
    case attention::DeltaVariant::Delta: return DeltaMode::kPropagate;
    case attention::DeltaVariant::Recompute: return DeltaMode::kRecompute;
    case attention::DeltaVariant::Interpolate: return DeltaMode::kInterpolate;
  }
  return DeltaMode::kPropagate;
}

}  // namespace

CudaAttention::CudaAttention(const attention::AttentionConfig& config, const model::ModelConfig& model,
                             int64_t capacity, int64_t max_chunk, int max_batch)
    : config_(config),
      schedule_(config.decode, model.n_layers),
      model_(model),
      scale_(1.0f / std::sqrt(static_cast<float>(model.head_dim))),
      sms_(current_device_sm_count()),
      max_batch_(std::max(1, max_batch)) {
  config_.validate(model.n_layers);
  prefill_key_ = prefill_description(config_);
  prefill_method_ = cuda_prefill_method(config_.prefill.kind).create(CudaPrefillSetup{config_, model_, capacity, max_chunk});
  const CudaDecodeMethodInfo& method = cuda_decode_method(config_.decode.kind);
  decode_method_ = method.create(CudaDecodeSetup{config_, model_, capacity, max_batch_, sms_, scale_});
  const int64_t q_elems = int64_t{model.n_heads} * model.head_dim;
  if (config_.prefill.delta) {
    // A step's rows (max_chunk + max_batch - 1) in up to max_batch chunks: each chunk rounds its
    // strided row count up by at most one.
    const int64_t step_rows = max_chunk + max_batch_ - 1;
    strided_capacity_ = step_rows / config_.prefill.gamma + max_batch_ + 1;
    strided_q_ = DeviceBuffer<__nv_bfloat16>(as_size(strided_capacity_ * q_elems));
    dense_rows_ = DeviceBuffer<__nv_bfloat16>(as_size(strided_capacity_ * q_elems));
    strided_pos_ = DeviceBuffer<int32_t>(as_size(strided_capacity_));
    if (config_.prefill.variant == attention::DeltaVariant::Interpolate) {  // it cannot correct in place
      corrected_ = DeviceBuffer<__nv_bfloat16>(as_size(step_rows * q_elems));
    }
  }

  plan_dense_decode(capacity);
  if (config_.instrument) fidelity_ = std::make_unique<CudaPrefillFidelity>(config_, model_, max_chunk);
}

void CudaAttention::plan_dense_decode(int64_t capacity) {
  const model::ModelConfig& m = model_;
  dense_ws_ = DeviceBuffer<unsigned char>(largest_plan(max_batch_, capacity, [&](int batch, int len) {
    return plan_decode_attention(batch, m.n_heads, m.n_kv_heads, m.head_dim, len, sms_).workspace_bytes;
  }));
}

size_t CudaAttention::device_bytes() const {
  size_t bytes = strided_q_.bytes() + dense_rows_.bytes() + corrected_.bytes() + strided_pos_.bytes() +
                 dense_ws_.bytes() + prefill_method_->device_bytes() + decode_method_->device_bytes();
  return bytes + (fidelity_ != nullptr ? fidelity_->device_bytes() : 0);
}

int64_t CudaAttention::required_chunk_alignment() const {
  return config_.prefill.delta ? config_.prefill.gamma : 1;
}

void CudaAttention::prefill(int layer, const __nv_bfloat16* q, int64_t n, int64_t first_pos, int64_t prompt_end,
                            const PagedKv& kv, __nv_bfloat16* out, cudaStream_t stream) {
  PrefillAttentionArgs args;
  args.q = q;
  args.first_pos = static_cast<int>(first_pos);
  args.n_q = static_cast<int>(n);
  args.n_heads = model_.n_heads;
  args.softmax_scale = scale_;
  // The prefill kernels read bf16 pages: an FP8 cache comes here as its bf16 staging pool.
  if (kv.dtype != KvDtype::Bf16) throw_error("CudaAttention::prefill: the {} pool was not staged to bf16", kv_dtype_name(kv.dtype));
  args.kv = sequence_kv(kv, 0, static_cast<int>(first_pos + n));
  args.kv.n_kv_heads = model_.n_kv_heads;
  args.kv.head_dim = model_.head_dim;
  args.out = out;
  prefill_method_->prepare(args, stream);
  if (!config_.prefill.delta) {
    prefill_method_->attend(args, stream, DeltaFusion{});
  } else {
    prefill_delta(args, out, stream);
    prefill_dense_tail(args, prompt_end, stream);
  }
  if (fidelity_ != nullptr) fidelity_->record(layer, args, prompt_end, stream);  // vs dense on the same q, k, v
}

void CudaAttention::prefill_dense_tail(const PrefillAttentionArgs& args, int64_t prompt_end, cudaStream_t stream) {
  const attention::RowRange tail = attention::dense_tail_rows(config_.prefill, args.first_pos, args.n_q, prompt_end);
  if (tail.begin == tail.end) return;
  const int64_t skipped = (tail.begin - args.first_pos) * int64_t{model_.n_heads} * model_.head_dim;
  PrefillAttentionArgs dense = args;
  dense.q = args.q + skipped;
  dense.out = args.out + skipped;
  dense.first_pos = static_cast<int>(tail.begin);
  dense.n_q = static_cast<int>(tail.end - tail.begin);
  prefill_attention(dense, stream);
}

void CudaAttention::prefill_delta(const PrefillAttentionArgs& args, __nv_bfloat16* out, cudaStream_t stream) {
  const int gamma = static_cast<int>(config_.prefill.gamma);
  const int row_elems = model_.n_heads * model_.head_dim;
  const int strided = strided_row_count(args.n_q, gamma);
  // Dense attention for the rows at multiples of gamma, causal by their true positions.
  strided_positions(args.n_q, args.first_pos, gamma, strided_pos_.data(), stream);
  gather_strided_rows(args.q, args.n_q, row_elems, gamma, strided_q_.data(), stream);
  PrefillAttentionArgs dense = args;
  dense.q = strided_q_.data();
  dense.q_pos = strided_pos_.data();
  dense.n_q = strided;
  dense.out = dense_rows_.data();
  prefill_attention(dense, stream);

  if (delta_fusable()) {  // the correction happens in the sparse kernel's epilogue (measured faster)
    prefill_method_->attend(args, stream, DeltaFusion{dense_rows_.data(), gamma});
    return;
  }
  prefill_method_->attend(args, stream, DeltaFusion{});
  correct_unfused(out, dense_rows_.data(), args.n_q, args.first_pos, stream);
}

bool CudaAttention::delta_fusable() const {
  const int64_t gamma = config_.prefill.gamma;
  return config_.prefill.variant == attention::DeltaVariant::Delta && (gamma == 16 || gamma == 32 || gamma == 64);
}

void CudaAttention::correct_unfused(__nv_bfloat16* out, const __nv_bfloat16* dense_rows, int n_q, int first_pos,
                                    cudaStream_t stream) {
  const int row_elems = model_.n_heads * model_.head_dim;
  const attention::DeltaVariant variant = config_.prefill.variant;
  DeltaCorrectArgs correct;
  correct.sparse = out;
  correct.dense_rows = dense_rows;
  correct.out = variant == attention::DeltaVariant::Interpolate ? corrected_.data() : out;
  correct.n_q = n_q;
  correct.first_pos = first_pos;
  correct.gamma = static_cast<int>(config_.prefill.gamma);
  correct.row_elems = row_elems;
  correct.mode = delta_mode(variant);
  delta_correct(correct, stream);
  if (correct.out != out) {
    CUDA_CHECK(cudaMemcpyAsync(out, correct.out, as_size(int64_t{n_q} * row_elems) * sizeof(__nv_bfloat16),
                               cudaMemcpyDeviceToDevice, stream));
  }
}

void CudaAttention::prefill_batch(int layer, const VarlenPrefillArgs& batch, const std::vector<VarlenChunk>& chunks,
                                  const std::vector<int64_t>& prompt_ends, cudaStream_t stream) {
  if (prompt_ends.size() != chunks.size()) {
    throw_error("prefill batch: {} chunks with {} prompt ends", chunks.size(), prompt_ends.size());
  }
  if (fidelity_ != nullptr) {  // --fidelity records inside prefill()
    const int64_t row_elems = int64_t{model_.n_heads} * model_.head_dim;
    for (size_t i = 0; i < chunks.size(); ++i) {
      const VarlenChunk& c = chunks[i];
      prefill(layer, batch.q + c.q_row * row_elems, c.n_q, c.first_pos, prompt_ends[i],
              sequence_kv(batch.kv, c.page_row, c.kv_len), batch.out + c.q_row * row_elems, stream);
    }
    return;
  }
  VarlenPrefillArgs args = batch;
  args.lse = nullptr;
  args.n_heads = model_.n_heads;
  args.kv.n_kv_heads = model_.n_kv_heads;
  args.kv.head_dim = model_.head_dim;
  args.softmax_scale = scale_;
  args.window = args.sink = 0;  // the method sets its own
  args.q_pos = nullptr;
  args.delta_dense = nullptr;
  args.gamma = 0;
  if (!config_.prefill.delta) {
    prefill_method_->attend_varlen(args, chunks, stream);
    return;
  }
  const int gamma = static_cast<int>(config_.prefill.gamma);
  const int row_elems = model_.n_heads * model_.head_dim;
  // Each chunk's strided rows get consecutive rows of the compacted dense pass.
  std::vector<VarlenChunk> sparse = chunks, strided;
  int strided_rows = 0;
  for (VarlenChunk& c : sparse) {
    c.delta_row = strided_rows;
    const int count = strided_row_count(c.n_q, gamma);
    strided.push_back({strided_rows, count, c.first_pos, c.kv_len, c.page_row, 0});
    strided_rows += count;
  }
  if (strided_rows > strided_capacity_) {
    throw_error("prefill batch: {} strided rows with workspaces planned for {}", strided_rows, strided_capacity_);
  }
  // Dense attention for the rows at multiples of gamma of every chunk, causal by their true
  // positions over their own pages: one launch.
  gather_strided_rows_varlen(args.q, sparse, row_elems, gamma, strided_q_.data(), strided_pos_.data(), stream);
  VarlenPrefillArgs dense = args;
  dense.q = strided_q_.data();
  dense.q_pos = strided_pos_.data();
  dense.out = dense_rows_.data();
  varlen_prefill_attention(dense, strided, stream);

  if (delta_fusable()) {
    VarlenPrefillArgs fused = args;
    fused.delta_dense = dense_rows_.data();
    fused.gamma = gamma;
    prefill_method_->attend_varlen(fused, sparse, stream);
  } else {  // the sparse pass, then every chunk's correction in one launch
    prefill_method_->attend_varlen(args, sparse, stream);
    const attention::DeltaVariant variant = config_.prefill.variant;
    DeltaCorrectArgs correct;
    correct.sparse = args.out;
    correct.dense_rows = dense_rows_.data();
    correct.out = variant == attention::DeltaVariant::Interpolate ? corrected_.data() : args.out;  // same rows
    correct.gamma = gamma;
    correct.row_elems = row_elems;
    correct.mode = delta_mode(variant);
    delta_correct_varlen(correct, sparse, stream);
    for (const VarlenChunk& c : sparse) {  // interpolate: back from the side buffer, chunk by chunk
      if (correct.out == args.out || c.n_q == 0) continue;
      const int64_t first = int64_t{c.q_row} * row_elems;
      CUDA_CHECK(cudaMemcpyAsync(args.out + first, correct.out + first,
                                 as_size(int64_t{c.n_q} * row_elems) * sizeof(__nv_bfloat16), cudaMemcpyDeviceToDevice,
                                 stream));
    }
  }

  // The dense tail of every chunk that holds one: one launch.
  std::vector<VarlenChunk> tails;
  for (size_t i = 0; i < chunks.size(); ++i) {
    const VarlenChunk& c = chunks[i];
    const attention::RowRange tail = attention::dense_tail_rows(config_.prefill, c.first_pos, c.n_q, prompt_ends[i]);
    if (tail.begin == tail.end) continue;
    const int skipped = static_cast<int>(tail.begin - c.first_pos);
    tails.push_back({c.q_row + skipped, static_cast<int>(tail.end - tail.begin), static_cast<int>(tail.begin), c.kv_len,
                     c.page_row, 0});
  }
  varlen_prefill_attention(args, tails, stream);
}

void CudaAttention::decode(int layer, const __nv_bfloat16* q, const int32_t* kv_lens, int max_kv_len, int batch,
                           const LayerKv& kv, __nv_bfloat16* out, cudaStream_t stream) {
  if (batch < 1 || batch > max_decode_batch()) {
    throw_error("decode of {} sequences with workspaces planned for {}", batch, max_decode_batch());
  }
  const CudaDecodeCall call{layer, schedule_.role(layer), q, kv_lens, max_kv_len, batch, kv, out};
  if (call.role != attention::LayerRole::Full) {
    decode_method_->decode(call, stream);
    return;
  }
  DecodeAttentionArgs dense = dense_decode_args(model_, scale_, call);
  dense.workspace = dense_ws_.data();
  dense.workspace_bytes = dense_ws_.bytes();
  decode_attention(dense, stream);
}

}  // namespace deltainfer::cuda
