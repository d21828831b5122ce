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
  prefill_method_ = cuda_prefill_method(config_.prefill.kind).create(CudaPrefillSetup{config_, model_, capacity, max_chunk});
  const CudaDecodeMethodInfo& method = cuda_decode_method(config_.decode.kind);
  decode_method_ = method.create(CudaDecodeSetup{config_, model_, capacity, max_batch_, sms_, scale_});
  keeps_key_bounds_ = method.keeps_key_bounds;
  const int64_t q_elems = int64_t{model.n_heads} * model.head_dim;
  if (config_.prefill.delta) {
    const int64_t rows = max_chunk / config_.prefill.gamma + 1;
    strided_q_ = DeviceBuffer<__nv_bfloat16>(as_size(rows * q_elems));
    dense_rows_ = DeviceBuffer<__nv_bfloat16>(as_size(rows * q_elems));
    strided_pos_ = DeviceBuffer<int32_t>(as_size(rows));
    corrected_ = DeviceBuffer<__nv_bfloat16>(as_size(max_chunk * q_elems));
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
                            const LayerKv& kv, __nv_bfloat16* out, cudaStream_t stream) {
  PrefillAttentionArgs args;
  args.q = q;
  args.first_pos = static_cast<int>(first_pos);
  args.n_q = static_cast<int>(n);
  args.n_heads = model_.n_heads;
  args.n_kv_heads = model_.n_kv_heads;
  args.head_dim = model_.head_dim;
  args.softmax_scale = scale_;
  args.kv = {kv.k_pool, kv.v_pool, kv.page_table, kv.num_pages, static_cast<int>(first_pos + n)};  // row 0 of the table
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

  const attention::DeltaVariant variant = config_.prefill.variant;
  const bool fusable = variant == attention::DeltaVariant::Delta && (gamma == 16 || gamma == 32 || gamma == 64);
  if (fusable) {  // the correction happens in the sparse kernel's epilogue (measured faster)
    prefill_method_->attend(args, stream, DeltaFusion{dense_rows_.data(), gamma});
    return;
  }
  prefill_method_->attend(args, stream, DeltaFusion{});
  DeltaCorrectArgs correct;
  correct.sparse = out;
  correct.dense_rows = dense_rows_.data();
  correct.out = variant == attention::DeltaVariant::Interpolate ? corrected_.data() : out;
  correct.n_q = args.n_q;
  correct.first_pos = args.first_pos;
  correct.gamma = gamma;
  correct.row_elems = row_elems;
  correct.mode = delta_mode(variant);
  delta_correct(correct, stream);
  if (correct.out != out) {
    CUDA_CHECK(cudaMemcpyAsync(out, correct.out, as_size(int64_t{args.n_q} * row_elems) * sizeof(__nv_bfloat16),
                               cudaMemcpyDeviceToDevice, stream));
  }
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
