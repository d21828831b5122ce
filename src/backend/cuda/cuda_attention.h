#pragma once
// The attention policies (attention/attention_config.h) on the GPU: which of our kernels each
// layer runs in prefill and decode. Prefill: the prefill method's CUDA implementation attends a
// chunk (methods/cuda_prefill_method.h), with Δ correction and the dense tail around it. Decode:
// Full layers attend densely here, every other layer goes to the decode method's CUDA
// implementation (methods/cuda_decode_method.h). Both are found in their registries by kind.
// The CPU twin is attention::CpuAttention; the same config gives the same attended sets. Every
// call only launches on the stream, and the decode calls read the context length from device
// memory, so a whole decode step can be captured in a CUDA graph.
#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "attention/attention_config.h"
#include "attention/layer_schedule.h"
#include "backend/cuda/attention_fidelity.h"
#include "backend/cuda/delta_decode.h"
#include "backend/cuda/device_buffer.h"
#include "backend/cuda/methods/cuda_decode_method.h"
#include "backend/cuda/methods/cuda_prefill_method.h"
#include "backend/cuda/prefill_attention.h"
#include "backend/cuda/sparse_prefill.h"
#include "model/model_config.h"

namespace deltainfer::cuda {

class CudaAttention {
 public:
  // Decode workspaces serve batches of up to max_batch sequences of up to `capacity` positions.
  // Throws InputError for a vertical-slash --block other than the kernel's 64, or knobs the decode
  // method's kernels do not support (a Quest --page other than 16).
  CudaAttention(const attention::AttentionConfig& config, const model::ModelConfig& model, int64_t capacity,
                int64_t max_chunk, int max_batch = 1);

  const attention::AttentionConfig& config() const { return config_; }
  int max_decode_batch() const { return max_batch_; }

  // Methods with equal prefill keys prefill alike (the decode half does not matter; an
  // instrumented one has its own): their sequences' chunks of a step may go through one
  // prefill_batch() call of either.
  const std::string& prefill_key() const { return prefill_key_; }

  // The --fidelity recorder (prefill), when config.instrument; nullptr otherwise.
  const CudaPrefillFidelity* fidelity() const { return fidelity_.get(); }

  // A prefill chunk must start at a multiple of required_chunk_alignment() (Δ's strided rows).
  int64_t required_chunk_alignment() const;

  // Device memory of every workspace the constructor allocated (the memory plan counts it).
  size_t device_bytes() const;

  // q: [n][n_heads][head_dim] at positions first_pos.., keys 0..first_pos+n-1 are in the cache.
  // kv: the layer's bf16 cache (paged_kv.h) with the sequence's pages in row 0 of its page table;
  // its batch, max_kv_len and kv_lens are not read (the chunk's keys are first_pos + n).
  // prompt_end: one past the last row of the whole prefill (where Δ's dense tail ends).
  // One sequence's chunk through the single-sequence kernels.
  void prefill(int layer, const __nv_bfloat16* q, int64_t n, int64_t first_pos, int64_t prompt_end,
               const PagedKv& kv, __nv_bfloat16* out, cudaStream_t stream);

  // A step's chunks of several sequences whose methods share this prefill_key(), each as
  // prefill() would attend it, in as few launches as the method allows: without Δ the method's
  // attend_varlen(); with Δ one gather and one dense varlen launch for the strided rows of every
  // chunk (compacted, at their positions), the method's attend_varlen() with the correction fused
  // (γ 16/32/64, variant delta; otherwise one delta_correct_varlen after it), and one dense varlen
  // launch for every chunk's dense tail. `batch` holds the layer's packed q/out and its cache
  // (batch.kv: pools, page tables, batch, max_kv_len; shapes, scale and the rest are filled in here); chunk c of `chunks` starts its
  // sequence's prefill at kv_len - n_q and the whole prefill ends at prompt_ends[c]. The chunks'
  // rows lie within the first max_chunk + max_batch - 1 packed rows (a step's rows).
  // Instrumented (--fidelity), it runs prefill() chunk by chunk, which records.
  void prefill_batch(int layer, const VarlenPrefillArgs& batch, const std::vector<VarlenChunk>& chunks,
                     const std::vector<int64_t>& prompt_ends, cudaStream_t stream);

  // One decode step of `batch` sequences (q, out: [batch][n_heads][head_dim]; kv_lens: [batch] on
  // the device, each = position + 1, bounded by max_kv_len, the graph's bucket). Called for layers
  // 0..L-1 in order each step. A method that keeps page state (CudaPageState) needs
  // kv.page_state current for [0, kv_len) in its Sparse layers.
  void decode(int layer, const __nv_bfloat16* q, const int32_t* kv_lens, int max_kv_len, int batch, const LayerKv& kv,
              __nv_bfloat16* out, cudaStream_t stream);

 private:
  void prefill_delta(const PrefillAttentionArgs& args, __nv_bfloat16* out, cudaStream_t stream);
  void prefill_dense_tail(const PrefillAttentionArgs& args, int64_t prompt_end, cudaStream_t stream);
  bool delta_fusable() const;
  // Δ's correction after an unfused sparse pass: out rows [n_q] from dense_rows (variants other
  // than a fused delta).
  void correct_unfused(__nv_bfloat16* out, const __nv_bfloat16* dense_rows, int n_q, int first_pos,
                       cudaStream_t stream);
  void plan_dense_decode(int64_t capacity);

  attention::AttentionConfig config_;
  attention::LayerSchedule schedule_;
  model::ModelConfig model_;
  float scale_;
  int sms_;
  int max_batch_;
  int64_t strided_capacity_ = 0;  // rows of strided_q_ / dense_rows_
  std::string prefill_key_;
  DeviceBuffer<__nv_bfloat16> strided_q_, dense_rows_, corrected_;
  DeviceBuffer<int32_t> strided_pos_;
  DeviceBuffer<unsigned char> dense_ws_;
  std::unique_ptr<CudaPrefillMethod> prefill_method_;  // attends each chunk's rows
  std::unique_ptr<CudaDecodeMethod> decode_method_;    // the decode method's layers that are not Full
  std::unique_ptr<CudaPrefillFidelity> fidelity_;  // config.instrument only
};

}  // namespace deltainfer::cuda
