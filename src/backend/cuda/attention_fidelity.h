#pragma once
// `--fidelity` on the CUDA backend, prefill only: after a layer's prefill method has written a
// chunk's final output (Δ correction and dense tail applied), dense causal attention runs on the
// same q and paged k, v (the dense prefill kernel, into a scratch output sized once for the
// largest chunk), and the cosine of every (row, head) output against dense is folded into the
// layer's device accumulators (fidelity_cosine.h). Attended keys are counted on the host by the
// CPU policy's rules. The report has the CPU's JSON form and definitions
// (attention::FidelityReport, CpuAttention::record_prefill), so the two backends compare field by
// field; its decode entries stay empty (decode steps run in CUDA graphs and are not instrumented;
// the CPU is where decode cosine and recall are measured).
//
// Dense and sliding prefill only (with or without +delta): vertical-slash key sets depend on the
// data (the GPU kernel picks the blocks), so its attended count is not known on the host; the
// constructor refuses it.
#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>
#include <vector>

#include "attention/attention_config.h"
#include "attention/fidelity.h"
#include "backend/cuda/device_buffer.h"
#include "backend/cuda/prefill_attention.h"
#include "model/model_config.h"

namespace deltainfer::cuda {

class CudaPrefillFidelity {
 public:
  // Scratch for chunks of up to max_chunk rows. InputError for a method it cannot report.
  CudaPrefillFidelity(const attention::AttentionConfig& config, const model::ModelConfig& model, int64_t max_chunk);

  size_t device_bytes() const;

  // `chunk` is the prefill call the method just ran (contiguous rows, its out holding the final
  // output); prompt_end as in CudaAttention::prefill. Launches on `stream`, counts on the host.
  void record(int layer, const PrefillAttentionArgs& chunk, int64_t prompt_end, cudaStream_t stream);

  // Everything recorded so far (synchronizes the device to read the accumulators).
  attention::FidelityReport report() const;
  // As `--fidelity FILE` writes it: report().to_json() plus "backend": "cuda" and
  // "decode_instrumented": false.
  nlohmann::json to_json() const;

 private:
  int64_t attended_pairs(int64_t first_pos, int64_t n, int64_t prompt_end) const;

  attention::AttentionConfig config_;
  int n_heads_;
  int head_dim_;
  int64_t max_chunk_;
  attention::FidelityReport counts_;  // host counts; the cosine fields come from the device
  DeviceBuffer<__nv_bfloat16> dense_out_;
  DeviceBuffer<double> accumulators_;  // [n_layers][2]: cosine sum, cosine min
  DeviceBuffer<double> workspace_;
};

}  // namespace deltainfer::cuda
