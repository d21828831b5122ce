#pragma once
// Decode methods whose Sparse layers attend one token set per sequence, shared by all heads:
// DELTA and Tidal select it at their Δ-layers (delta_decode_select), StreamingLLM writes its sink
// + window at layer 0 (streaming.cpp). The set, the Δ-layers' lse and the workspaces are planned
// here for max_batch sequences.
#include "backend/cuda/delta_decode.h"
#include "backend/cuda/device_buffer.h"
#include "backend/cuda/methods/cuda_decode_method.h"

namespace deltainfer::cuda {

// The Δ-layers' page selection under `decode`, keeping `recency` tokens (0 for Tidal).
PageSelectConfig delta_select_config(const attention::DecodeConfig& decode, int64_t recency);

class SharedSetDecode : public CudaDecodeMethod {
 public:
  // set_capacity: entries of each sequence's set; delta_select: whether DeltaSelect layers select
  // the set (a selection workspace is planned).
  SharedSetDecode(const CudaDecodeSetup& setup, const PageSelectConfig& select, int set_capacity, bool delta_select);

  size_t device_bytes() const override;
  void decode(const CudaDecodeCall& call, cudaStream_t stream) override;

 protected:
  TokenSet set() { return TokenSet{set_indices_.data(), set_counts_.data(), set_capacity_, 1}; }

 private:
  model::ModelConfig model_;
  float scale_;
  PageSelectConfig select_;
  int set_capacity_;
  DeviceBuffer<int32_t> set_indices_, set_counts_;
  DeviceBuffer<float> lse_;
  DeviceBuffer<unsigned char> select_ws_, sparse_ws_;
};

}  // namespace deltainfer::cuda
