#pragma once
// What the kernel benchmarks share: random bf16 inputs and FP8 codes, device arrays, CUDA-event
// medians, the copy rate, the --kv-dtype flag of the decode benches.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "core/kv_page.h"

namespace bench_support {

// A failed CUDA call ends the benchmark: its numbers would mean nothing.
inline void check(cudaError_t err, const char* what) {
  if (err != cudaSuccess) {
    std::fprintf(stderr, "%s: %s\n", what, cudaGetErrorString(err));
    std::exit(1);
  }
}

namespace detail {
namespace {

// A well-mixed 32-bit hash of element i under `seed`.
__device__ __forceinline__ uint32_t hash_of(size_t i, uint32_t seed) {
  uint32_t x = static_cast<uint32_t>(i) * 2654435761u ^ seed ^ static_cast<uint32_t>(i >> 32);
  x ^= x >> 16;
  x *= 0x7feb352du;
  x ^= x >> 15;
  x *= 0x846ca68bu;
  return x ^ (x >> 16);
}

// Uniform in [-sqrt(3), sqrt(3)) (unit variance) from a per-element hash: never zeros.
__global__ void fill_random_kernel(__nv_bfloat16* data, size_t n, uint32_t seed) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    const float u = static_cast<float>(hash_of(i, seed)) * (1.0f / 4294967296.0f);
    data[i] = __float2bfloat16((u * 2.0f - 1.0f) * 1.7320508f);
  }
}

// Random e4m3 codes (core/fp8_e4m3.h) from the same hash with the exponent's lowest bit cleared:
// the exponent is at most 1110, so no code is the NaN S.1111.111; magnitudes up to 240.
__global__ void fill_random_fp8_kernel(uint8_t* data, size_t n, uint32_t seed) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    data[i] = static_cast<uint8_t>(hash_of(i, seed) & 0xF7u);
  }
}

}  // namespace
}  // namespace detail

inline void fill_random(__nv_bfloat16* data, size_t n, uint32_t seed) {
  detail::fill_random_kernel<<<2048, 256>>>(data, n, seed);
  check(cudaGetLastError(), "fill_random");
}

inline void fill_random_fp8(uint8_t* data, size_t n, uint32_t seed) {
  detail::fill_random_fp8_kernel<<<2048, 256>>>(data, n, seed);
  check(cudaGetLastError(), "fill_random_fp8");
}

struct DeviceArray {
  void* ptr = nullptr;
  explicit DeviceArray(size_t bytes) { check(cudaMalloc(&ptr, std::max<size_t>(bytes, 1)), "cudaMalloc"); }
  ~DeviceArray() { cudaFree(ptr); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  template <typename T>
  T* as() const {
    return static_cast<T*>(ptr);
  }
};

// Median over `repeats` timed runs of `fn` (launches on the default stream) after `warmup` runs.
inline float median_ms(const std::function<void()>& fn, int repeats, int warmup = 1) {
  cudaEvent_t start, stop;
  check(cudaEventCreate(&start), "cudaEventCreate");
  check(cudaEventCreate(&stop), "cudaEventCreate");
  for (int i = 0; i < warmup; ++i) fn();
  check(cudaDeviceSynchronize(), "warm-up");
  std::vector<float> times;
  for (int i = 0; i < repeats; ++i) {
    check(cudaEventRecord(start), "cudaEventRecord");
    fn();
    check(cudaEventRecord(stop), "cudaEventRecord");
    check(cudaEventSynchronize(stop), "run");
    float ms = 0.0f;
    check(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime");
    times.push_back(ms);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

// --kv-dtype bf16|fp8|both from argv (default bf16): the KV pool element types a decode bench runs.
inline std::vector<deltainfer::KvDtype> kv_dtypes_from_args(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg != "--kv-dtype" || i + 1 >= argc) {
      std::fprintf(stderr, "usage: %s [--kv-dtype bf16|fp8|both]\n", argv[0]);
      std::exit(2);
    }
    const std::string value = argv[++i];
    if (value == "bf16") return {deltainfer::KvDtype::Bf16};
    if (value == "fp8") return {deltainfer::KvDtype::Fp8E4m3};
    if (value == "both") return {deltainfer::KvDtype::Bf16, deltainfer::KvDtype::Fp8E4m3};
    std::fprintf(stderr, "--kv-dtype %s: expected bf16, fp8 or both\n", value.c_str());
    std::exit(2);
  }
  return {deltainfer::KvDtype::Bf16};
}

}  // namespace bench_support
