#include "backend/cuda/methods/shared_set_decode.h"

#include "backend/cuda/methods/decode_calls.h"
#include "core/error.h"

namespace deltainfer::cuda {
namespace {

size_t as_size(int64_t value) { return static_cast<size_t>(value); }

}  // namespace

PageSelectConfig delta_select_config(const attention::DecodeConfig& d, int64_t recency) {
  PageSelectConfig select;
  select.budget = static_cast<int>(d.budget);
  select.page = static_cast<int>(d.page);
  select.recency = static_cast<int>(recency);
  select.head_reduce = d.aggregation == attention::HeadAggregation::Max ? HeadReduce::kMax : HeadReduce::kSum;
  return select;
}

SharedSetDecode::SharedSetDecode(const CudaDecodeSetup& setup, const PageSelectConfig& select, int set_capacity,
                                 bool delta_select)
    : model_(setup.model), scale_(setup.softmax_scale), select_(select), set_capacity_(set_capacity) {
  const model::ModelConfig& m = model_;
  const int max_batch = setup.max_batch, sms = setup.sms;
  set_indices_ = DeviceBuffer<int32_t>(as_size(int64_t{max_batch} * set_capacity_));
  set_counts_ = DeviceBuffer<int32_t>(as_size(max_batch));
  lse_ = DeviceBuffer<float>(as_size(int64_t{max_batch} * m.n_heads));
  if (delta_select) {
    select_ws_ = DeviceBuffer<unsigned char>(largest_plan(max_batch, setup.capacity, [&](int batch, int len) {
      return plan_delta_select(batch, m.n_heads, m.n_kv_heads, m.head_dim, len, select_, sms).workspace_bytes;
    }));
  }
  sparse_ws_ = DeviceBuffer<unsigned char>(largest_plan(max_batch, setup.capacity, [&](int batch, int) {
    return plan_sparse_decode(batch, m.n_heads, m.n_kv_heads, m.head_dim, set_capacity_, 1, sms).workspace_bytes;
  }));
}

size_t SharedSetDecode::device_bytes() const {
  return set_indices_.bytes() + set_counts_.bytes() + lse_.bytes() + select_ws_.bytes() + sparse_ws_.bytes();
}

void SharedSetDecode::decode(const CudaDecodeCall& call, cudaStream_t stream) {
  switch (call.role) {
    case attention::LayerRole::DeltaSelect: {
      if (select_ws_.size() == 0) throw_error("layer {} selects, but this method plans no selection", call.layer);
      DecodeAttentionArgs dense = dense_decode_args(model_, scale_, call);
      dense.lse = lse_.data();
      delta_decode_select(dense, select_, select_ws_.data(), select_ws_.bytes(), set(), stream);
      return;
    }
    case attention::LayerRole::Sparse:
      sparse_decode_over_set(model_, scale_, call, set(), sparse_ws_.data(), sparse_ws_.bytes(), stream);
      return;
    case attention::LayerRole::Full: break;
  }
  throw_error("layer {} is Full: CudaAttention attends it densely", call.layer);
}

}  // namespace deltainfer::cuda
