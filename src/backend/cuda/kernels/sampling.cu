// Sampling kernels: one 1024-thread block per row. Top-k and top-p thresholds are found by radix
// selection on the order-preserving integer keys of the scaled logits (4 passes of 8 bits):
// top-k counts elements per digit, top-p sums their probability mass. The draw then walks the
// kept elements in index order with a block-wide prefix sum. No sort, no workspace.
#include <cuda_runtime.h>
#include <curand_kernel.h>

#include <cfloat>
#include <cstdint>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/sampling.h"
#include "core/error.h"

namespace deltainfer::cuda {
namespace {

constexpr int kThreads = 1024;
constexpr int kWarpsPerBlock = kThreads / 32;

// Monotone map float -> uint32: a < b  <=>  key(a) < key(b).
__device__ __forceinline__ uint32_t order_key(float v) {
  const uint32_t bits = __float_as_uint(v);
  return (bits & 0x80000000u) != 0 ? ~bits : bits | 0x80000000u;
}

template <typename T>
__device__ T block_sum(T v, T* scratch) {
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
  __syncthreads();
  if (threadIdx.x % 32 == 0) scratch[threadIdx.x / 32] = v;
  __syncthreads();
  T total = 0;
  for (int w = 0; w < kWarpsPerBlock; ++w) total += scratch[w];
  return total;
}

__device__ float block_max(float v, float* scratch) {
  for (int offset = 16; offset > 0; offset /= 2) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  __syncthreads();
  if (threadIdx.x % 32 == 0) scratch[threadIdx.x / 32] = v;
  __syncthreads();
  float result = -FLT_MAX;
  for (int w = 0; w < kWarpsPerBlock; ++w) result = fmaxf(result, scratch[w]);
  return result;
}

__global__ void argmax_kernel(const float* logits, int vocab, int32_t* out) {
  __shared__ float best_value[kWarpsPerBlock];
  __shared__ int best_index[kWarpsPerBlock];
  const float* row = logits + static_cast<size_t>(blockIdx.x) * vocab;
  float value = -INFINITY;
  int index = vocab;  // NaN rows fall back to 0 below
  for (int i = static_cast<int>(threadIdx.x); i < vocab; i += kThreads) {
    if (row[i] > value) {
      value = row[i];
      index = i;
    }
  }
  for (int offset = 16; offset > 0; offset /= 2) {
    const float other_value = __shfl_xor_sync(0xffffffffu, value, offset);
    const int other_index = __shfl_xor_sync(0xffffffffu, index, offset);
    if (other_value > value || (other_value == value && other_index < index)) {
      value = other_value;
      index = other_index;
    }
  }
  if (threadIdx.x % 32 == 0) {
    best_value[threadIdx.x / 32] = value;
    best_index[threadIdx.x / 32] = index;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int w = 1; w < kWarpsPerBlock; ++w) {
      if (best_value[w] > value || (best_value[w] == value && best_index[w] < index)) {
        value = best_value[w];
        index = best_index[w];
      }
    }
    out[blockIdx.x] = index < vocab ? index : 0;
  }
}

struct SampleParams {
  const float* logits;
  int vocab;
  float inv_temperature;
  int top_k;
  float top_p;
  uint64_t seed;
  uint64_t offset;
  const int32_t* offset_device;
  int32_t* out;
};

// Largest key T with weight(key >= T) >= target, where weight counts elements (by_mass false)
// or sums exp(z - z_max) (by_mass true), over elements with key >= floor_key.
__device__ uint32_t radix_select(const float* row, int vocab, float inv_temperature, float z_max, uint32_t floor_key,
                                 bool by_mass, float target, unsigned* count_hist, float* mass_hist) {
  uint32_t prefix = 0;  // digits fixed so far (high bits)
  float above = 0.0f;   // weight of elements whose key is above the current prefix range
  for (int shift = 24; shift >= 0; shift -= 8) {
    for (int b = static_cast<int>(threadIdx.x); b < 256; b += kThreads) {
      count_hist[b] = 0;
      mass_hist[b] = 0.0f;
    }
    __syncthreads();
    const uint32_t high_mask = shift == 24 ? 0u : ~((1u << (shift + 8)) - 1u);
    for (int i = static_cast<int>(threadIdx.x); i < vocab; i += kThreads) {
      const float z = row[i] * inv_temperature;
      const uint32_t key = order_key(z);
      if (key < floor_key || (key & high_mask) != prefix) continue;
      const unsigned digit = (key >> shift) & 0xFFu;
      if (by_mass) {
        atomicAdd(&mass_hist[digit], expf(z - z_max));
      } else {
        atomicAdd(&count_hist[digit], 1u);
      }
    }
    __syncthreads();
    // Walk digits from the top until the weight reaches the target (every thread, same result).
    int digit = 255;
    for (; digit > 0; --digit) {
      const float w = by_mass ? mass_hist[digit] : static_cast<float>(count_hist[digit]);
      if (above + w >= target) break;
      above += w;
    }
    prefix |= static_cast<uint32_t>(digit) << shift;
    __syncthreads();
  }
  return prefix;
}

__global__ void sample_kernel(const SampleParams p) {
  __shared__ unsigned count_hist[256];
  __shared__ float mass_hist[256];
  __shared__ float scratch[kWarpsPerBlock];
  const float* row = p.logits + static_cast<size_t>(blockIdx.x) * p.vocab;

  float local_max = -FLT_MAX;
  for (int i = static_cast<int>(threadIdx.x); i < p.vocab; i += kThreads) local_max = fmaxf(local_max, row[i]);
  const float z_max = block_max(local_max, scratch) * p.inv_temperature;

  uint32_t threshold = 0;  // keep keys >= threshold
  if (p.top_k > 0 && p.top_k < p.vocab) {
    threshold = radix_select(row, p.vocab, p.inv_temperature, z_max, 0u, false, static_cast<float>(p.top_k),
                             count_hist, mass_hist);
  }
  auto kept_mass = [&](uint32_t floor_key) {
    float local = 0.0f;
    for (int i = static_cast<int>(threadIdx.x); i < p.vocab; i += kThreads) {
      const float z = row[i] * p.inv_temperature;
      if (order_key(z) >= floor_key) local += expf(z - z_max);
    }
    return block_sum(local, scratch);
  };
  if (p.top_p < 1.0f) {
    const float total = kept_mass(threshold);
    threshold = radix_select(row, p.vocab, p.inv_temperature, z_max, threshold, true, p.top_p * total, count_hist,
                             mass_hist);
  }
  const float total = kept_mass(threshold);

  curandStatePhilox4_32_10_t state;
  const uint64_t offset = p.offset + (p.offset_device != nullptr ? static_cast<uint64_t>(*p.offset_device) : 0u);
  curand_init(p.seed, blockIdx.x, offset, &state);
  __shared__ float u_shared;
  if (threadIdx.x == 0) u_shared = (1.0f - curand_uniform(&state)) * total;  // in [0, total)
  __syncthreads();
  const float u = u_shared;

  // Contiguous segment per thread; an exclusive prefix sum over threads finds the segment of u.
  const int per_thread = (p.vocab + kThreads - 1) / kThreads;
  const int begin = static_cast<int>(threadIdx.x) * per_thread;
  const int end = min(p.vocab, begin + per_thread);
  float segment = 0.0f;
  for (int i = begin; i < end; ++i) {
    const float z = row[i] * p.inv_temperature;
    if (order_key(z) >= threshold) segment += expf(z - z_max);
  }
  __shared__ float prefix[kThreads];
  prefix[threadIdx.x] = segment;
  __syncthreads();
  for (int offset = 1; offset < kThreads; offset *= 2) {  // Hillis-Steele inclusive scan
    const float add = threadIdx.x >= static_cast<unsigned>(offset) ? prefix[threadIdx.x - offset] : 0.0f;
    __syncthreads();
    prefix[threadIdx.x] += add;
    __syncthreads();
  }
  const float before = prefix[threadIdx.x] - segment;
  __shared__ int chosen;
  if (threadIdx.x == 0) chosen = -1;
  __syncthreads();
  if (segment > 0.0f && u >= before && u < prefix[threadIdx.x]) {
    float running = before;
    int last_kept = -1;
    for (int i = begin; i < end; ++i) {
      const float z = row[i] * p.inv_temperature;
      if (order_key(z) < threshold) continue;
      last_kept = i;
      running += expf(z - z_max);
      if (u < running) break;
    }
    atomicMax(&chosen, last_kept);  // rounding can put u in two neighbours' ranges: take one
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    if (chosen < 0) {  // u landed past the last kept element through rounding: take the last one
      for (int i = p.vocab - 1; i >= 0; --i) {
        if (order_key(row[i] * p.inv_temperature) >= threshold) {
          chosen = i;
          break;
        }
      }
    }
    p.out[blockIdx.x] = chosen < 0 ? 0 : chosen;
  }
}

}  // namespace

void argmax(const float* logits, int rows, int vocab, int32_t* out, cudaStream_t stream) {
  if (rows <= 0) return;
  if (vocab <= 0) throw_input_error("argmax: vocab {} must be positive", vocab);
  argmax_kernel<<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(logits, vocab, out);
  CUDA_CHECK_LAUNCH();
}

void sample(const float* logits, int rows, int vocab, const SamplingConfig& config, int32_t* out,
            cudaStream_t stream) {
  if (!(config.temperature > 0.0f)) {
    throw_input_error("sample: temperature {} must be > 0 (use argmax for greedy)", config.temperature);
  }
  if (config.top_k < 0) throw_input_error("sample: top-k {} must be >= 0", config.top_k);
  if (!(config.top_p > 0.0f && config.top_p <= 1.0f)) throw_input_error("sample: top-p {} not in (0, 1]", config.top_p);
  if (vocab <= 0) throw_input_error("sample: vocab {} must be positive", vocab);
  if (rows <= 0) return;
  const SampleParams p{logits, vocab, 1.0f / config.temperature, config.top_k, config.top_p, config.seed,
                       config.philox_offset, config.philox_offset_device, out};
  sample_kernel<<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(p);
  CUDA_CHECK_LAUNCH();
}

}  // namespace deltainfer::cuda
