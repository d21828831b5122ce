// Element-wise and per-row kernels (see elementwise.h). These move few bytes compared with the
// GEMMs and attention, so they are written for clarity: grid-stride loops and one block per row.
#include <cuda_bf16.h>

#include <cstdint>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/decode_attention.h"
#include "backend/cuda/elementwise.h"
#include "core/error.h"

namespace deltainfer::cuda {
namespace {

constexpr int kRowThreads = 256;

unsigned grid_for(int64_t count, int threads) {
  const int64_t blocks = (count + threads - 1) / threads;
  return static_cast<unsigned>(blocks < 65535 * 4 ? (blocks > 0 ? blocks : 1) : 65535 * 4);
}

__device__ __forceinline__ float to_f32(float v) { return v; }
__device__ __forceinline__ float to_f32(__nv_bfloat16 v) { return __bfloat162float(v); }

__device__ float block_sum(float v) {
  __shared__ float partial[kRowThreads / 32];
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
  const int warp = static_cast<int>(threadIdx.x) / 32;
  if (threadIdx.x % 32 == 0) partial[warp] = v;
  __syncthreads();
  float total = 0.0f;
  for (int w = 0; w < kRowThreads / 32; ++w) total += partial[w];
  return total;
}

template <typename In>
__global__ void rmsnorm_kernel(const In* x, const __nv_bfloat16* gain, __nv_bfloat16* y, int dim, float eps) {
  const In* row = x + static_cast<size_t>(blockIdx.x) * dim;
  __nv_bfloat16* out = y + static_cast<size_t>(blockIdx.x) * dim;
  float sum_squares = 0.0f;
  for (int i = static_cast<int>(threadIdx.x); i < dim; i += kRowThreads) {
    const float v = to_f32(row[i]);
    sum_squares += v * v;
  }
  const float scale = rsqrtf(block_sum(sum_squares) / static_cast<float>(dim) + eps);
  for (int i = static_cast<int>(threadIdx.x); i < dim; i += kRowThreads) {
    out[i] = __float2bfloat16(to_f32(row[i]) * scale * __bfloat162float(gain[i]));
  }
}

template <typename In>
void launch_rmsnorm(const In* x, const __nv_bfloat16* gain, __nv_bfloat16* y, int64_t rows, int dim, float eps,
                    cudaStream_t stream) {
  if (rows <= 0) return;
  if (rows > 0x7fffffff) throw_input_error("rmsnorm: {} rows is too many for one launch", rows);
  rmsnorm_kernel<In><<<static_cast<unsigned>(rows), kRowThreads, 0, stream>>>(x, gain, y, dim, eps);
  CUDA_CHECK_LAUNCH();
}

// One block per token: threads walk the (head, pair) rotations of q and k, then the v copy.
__global__ void rope_append_kernel(const RopeAppendArgs a) {
  const int t = static_cast<int>(blockIdx.x);
  const int position = a.positions[t];
  const int seq = a.token_seq != nullptr ? a.token_seq[t] : 0;
  const bool to_rows = a.k_rows != nullptr;
  const int page = to_rows ? 0 : a.page_table[static_cast<size_t>(seq) * a.page_table_stride + position / kKvPageSize];
  const int slot = position % kKvPageSize;
  // Where KV head `head`'s row of this token goes: its cache slot, or row t of k_rows / v_rows.
  const auto kv_offset = [&](int head) {
    return to_rows ? (static_cast<size_t>(t) * a.n_kv_heads + head) * a.head_dim
                   : ((static_cast<size_t>(page) * a.n_kv_heads + head) * kKvPageSize + slot) * a.head_dim;
  };
  const int half = a.head_dim / 2;
  const bool interleaved = a.interleaved;
  const int q_pairs = a.n_heads * half;
  const int k_pairs = a.n_kv_heads * half;
  for (int idx = static_cast<int>(threadIdx.x); idx < q_pairs + k_pairs; idx += static_cast<int>(blockDim.x)) {
    const bool is_q = idx < q_pairs;
    const int local = is_q ? idx : idx - q_pairs;
    const int head = local / half;
    const int i = local % half;
    double sin_angle, cos_angle;
    sincos(static_cast<double>(position) * static_cast<double>(a.inv_freq[i]), &sin_angle, &cos_angle);
    const float c = static_cast<float>(cos_angle);
    const float s = static_cast<float>(sin_angle);
    const int first = interleaved ? 2 * i : i;
    const int second = interleaved ? 2 * i + 1 : i + half;
    const __nv_bfloat16* in = is_q ? a.q + static_cast<size_t>(t) * a.q_stride + static_cast<size_t>(head) * a.head_dim
                                   : a.k + static_cast<size_t>(t) * a.k_stride + static_cast<size_t>(head) * a.head_dim;
    const float x0 = __bfloat162float(in[first]);
    const float x1 = __bfloat162float(in[second]);
    __nv_bfloat16* q_row = a.q_out != nullptr
                               ? a.q_out + static_cast<size_t>(t) * a.n_heads * a.head_dim
                               : a.q + static_cast<size_t>(t) * a.q_stride;
    __nv_bfloat16* out = is_q ? q_row + static_cast<size_t>(head) * a.head_dim
                              : (to_rows ? a.k_rows : a.k_pool) + kv_offset(head);
    out[first] = __float2bfloat16(x0 * c - x1 * s);
    out[second] = __float2bfloat16(x0 * s + x1 * c);
  }
  const int v_count = a.n_kv_heads * a.head_dim;
  for (int idx = static_cast<int>(threadIdx.x); idx < v_count; idx += static_cast<int>(blockDim.x)) {
    const int head = idx / a.head_dim;
    const int i = idx % a.head_dim;
    (to_rows ? a.v_rows : a.v_pool)[kv_offset(head) + i] = a.v[static_cast<size_t>(t) * a.v_stride + idx];
  }
}

__global__ void swiglu_kernel(const __nv_bfloat16* gate, const __nv_bfloat16* up, int64_t stride,
                              __nv_bfloat16* out, int64_t rows, int dim) {
  const int64_t count = rows * dim;
  for (int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; idx < count;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = idx / dim;
    const int64_t i = idx % dim;
    const float g = __bfloat162float(gate[r * stride + i]);
    const float u = __bfloat162float(up[r * stride + i]);
    out[idx] = __float2bfloat16(g / (1.0f + expf(-g)) * u);
  }
}

__global__ void embedding_kernel(const int32_t* tokens, const __nv_bfloat16* table, float* out, int dim,
                                 int vocab) {
  const int32_t id = tokens[blockIdx.x];
  float* row = out + static_cast<size_t>(blockIdx.x) * dim;
  const bool valid = id >= 0 && id < vocab;
  for (int i = static_cast<int>(threadIdx.x); i < dim; i += static_cast<int>(blockDim.x)) {
    row[i] = valid ? __bfloat162float(table[static_cast<size_t>(id) * dim + i]) : 0.0f;
  }
}

__global__ void residual_add_kernel(float* residual, const __nv_bfloat16* x, int64_t count) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    residual[i] += __bfloat162float(x[i]);
  }
}

__global__ void f32_to_bf16_kernel(const float* in, __nv_bfloat16* out, int64_t count) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    out[i] = __float2bfloat16(in[i]);
  }
}

}  // namespace

void rmsnorm(const float* x, const __nv_bfloat16* gain, __nv_bfloat16* y, int64_t rows, int dim, float eps,
             cudaStream_t stream) {
  launch_rmsnorm(x, gain, y, rows, dim, eps, stream);
}

void rmsnorm(const __nv_bfloat16* x, const __nv_bfloat16* gain, __nv_bfloat16* y, int64_t rows, int dim, float eps,
             cudaStream_t stream) {
  launch_rmsnorm(x, gain, y, rows, dim, eps, stream);
}

void rope_append_kv(const RopeAppendArgs& args, cudaStream_t stream) {
  if (args.head_dim <= 0 || args.head_dim % 2 != 0) {
    throw_input_error("rope_append_kv: head_dim {} must be even and positive", args.head_dim);
  }
  if (args.n_tokens <= 0) return;
  if ((args.k_rows == nullptr) != (args.v_rows == nullptr)) {
    throw_input_error("rope_append_kv: k_rows and v_rows are set together or not at all");
  }
  rope_append_kernel<<<static_cast<unsigned>(args.n_tokens), kRowThreads, 0, stream>>>(args);
  CUDA_CHECK_LAUNCH();
}

void swiglu(const __nv_bfloat16* gate, const __nv_bfloat16* up, int64_t gate_up_stride, __nv_bfloat16* out,
            int64_t rows, int dim, cudaStream_t stream) {
  if (rows <= 0 || dim <= 0) return;
  swiglu_kernel<<<grid_for(rows * dim, kRowThreads), kRowThreads, 0, stream>>>(gate, up, gate_up_stride, out, rows,
                                                                               dim);
  CUDA_CHECK_LAUNCH();
}

void embedding_gather(const int32_t* tokens, const __nv_bfloat16* table, float* out, int n_tokens, int dim,
                      int vocab, cudaStream_t stream) {
  if (n_tokens <= 0) return;
  embedding_kernel<<<static_cast<unsigned>(n_tokens), kRowThreads, 0, stream>>>(tokens, table, out, dim, vocab);
  CUDA_CHECK_LAUNCH();
}

void residual_add(float* residual, const __nv_bfloat16* x, int64_t count, cudaStream_t stream) {
  if (count <= 0) return;
  residual_add_kernel<<<grid_for(count, kRowThreads), kRowThreads, 0, stream>>>(residual, x, count);
  CUDA_CHECK_LAUNCH();
}

void f32_to_bf16(const float* in, __nv_bfloat16* out, int64_t count, cudaStream_t stream) {
  if (count <= 0) return;
  f32_to_bf16_kernel<<<grid_for(count, kRowThreads), kRowThreads, 0, stream>>>(in, out, count);
  CUDA_CHECK_LAUNCH();
}

namespace {

__global__ void add_bias_kernel(__nv_bfloat16* y, const __nv_bfloat16* bias, int64_t count, int cols) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += stride) {
    y[i] = __float2bfloat16(__bfloat162float(y[i]) + __bfloat162float(bias[i % cols]));
  }
}

}  // namespace

void add_bias(__nv_bfloat16* y, const __nv_bfloat16* bias, int64_t rows, int cols, cudaStream_t stream) {
  const int64_t count = rows * cols;
  if (count <= 0) return;
  add_bias_kernel<<<grid_for(count, kRowThreads), kRowThreads, 0, stream>>>(y, bias, count, cols);
  CUDA_CHECK_LAUNCH();
}

}  // namespace deltainfer::cuda
