#pragma once
// Element-wise and per-row kernels of the transformer layer on the GPU. The residual stream is
// f32; what feeds a GEMM or the KV cache is bf16. All pointers are device pointers; every call
// only launches on `stream` (no allocation, no synchronization), so a forward pass built from
// them can be captured in a CUDA graph. CPU twins: backend/cpu/ops.h.
#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>


namespace deltainfer::cuda {

// y[r] = x[r] / rms(x[r]) * gain for `rows` rows of `dim` (f32 sums).
void rmsnorm(const float* x, const __nv_bfloat16* gain, __nv_bfloat16* y, int64_t rows, int dim, float eps,
             cudaStream_t stream);
// The same on bf16 rows (Qwen3's per-head q/k norm: rows = tokens × heads, dim = head_dim).
void rmsnorm(const __nv_bfloat16* x, const __nv_bfloat16* gain, __nv_bfloat16* y, int64_t rows, int dim,
             float eps, cudaStream_t stream);

// One projected token batch to rotate and append: q/k/v rows may live in one fused QKV buffer
// (then the strides are q_dim + 2 * kv_dim and k, v point into it).
struct RopeAppendArgs {
  __nv_bfloat16* q = nullptr;        // [n_tokens][q_stride], first n_heads*head_dim rotated in place
  __nv_bfloat16* q_out = nullptr;    // if set: rotated q goes here, [n_tokens][n_heads*head_dim]
  const __nv_bfloat16* k = nullptr;  // [n_tokens][k_stride]
  const __nv_bfloat16* v = nullptr;  // [n_tokens][v_stride]
  int64_t q_stride = 0, k_stride = 0, v_stride = 0;
  int n_tokens = 0;
  int n_heads = 0;
  int n_kv_heads = 0;
  int head_dim = 0;                   // even
  const int32_t* positions = nullptr;  // [n_tokens] position of each token in its sequence
  const int32_t* token_seq = nullptr;  // [n_tokens] sequence of each token; nullptr: all sequence 0
  const int32_t* page_table = nullptr;  // [batch][page_table_stride]
  int page_table_stride = 0;
  __nv_bfloat16* k_pool = nullptr;  // [num_pages][n_kv_heads][kKvPageSize][head_dim]
  __nv_bfloat16* v_pool = nullptr;
  // Instead of the pools (an FP8 cache, whose append quantizes whole page runs: kv_fp8_append.h):
  // rotated k and copied v go to rows [n_tokens][n_kv_heads][head_dim]; page_table is unused then.
  __nv_bfloat16* k_rows = nullptr;
  __nv_bfloat16* v_rows = nullptr;
  const float* inv_freq = nullptr;  // [head_dim / 2], from backend::cpu::rope_inverse_frequencies
  bool interleaved = false;         // RoPE pairs (2i, 2i+1); else (i, i + head_dim/2) (model::RopeStyle)
};

// Rotates q (in place or into q_out) and k into the KV cache slot of its position (keys are cached after RoPE);
// copies v into its slot (or both into k_rows / v_rows). Angles are position * inv_freq in f64, so long positions keep precision.
void rope_append_kv(const RopeAppendArgs& args, cudaStream_t stream);

// out[r][i] = silu(gate[r][i]) * up[r][i]; gate/up rows may be halves of one fused buffer.
void swiglu(const __nv_bfloat16* gate, const __nv_bfloat16* up, int64_t gate_up_stride, __nv_bfloat16* out,
            int64_t rows, int dim, cudaStream_t stream);

// out[t] = table[tokens[t]] as f32 (the residual stream). Ids outside [0, vocab) give zeros: the
// engine validates ids at the edge, and a kernel must not read out of bounds.
void embedding_gather(const int32_t* tokens, const __nv_bfloat16* table, float* out, int n_tokens, int dim,
                      int vocab, cudaStream_t stream);

// y[r][c] += bias[c] for `rows` rows of `cols` (Qwen2's q/k/v projection biases).
void add_bias(__nv_bfloat16* y, const __nv_bfloat16* bias, int64_t rows, int cols, cudaStream_t stream);

// residual[i] += x[i].
void residual_add(float* residual, const __nv_bfloat16* x, int64_t count, cudaStream_t stream);

// out[i] = bf16(in[i]), round to nearest even.
void f32_to_bf16(const float* in, __nv_bfloat16* out, int64_t count, cudaStream_t stream);

}  // namespace deltainfer::cuda
