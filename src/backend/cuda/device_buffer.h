#pragma once
// DeviceBuffer<T>: one cudaMalloc'd array owned by a C++ object (freed in the destructor, movable,
// not copyable). Allocation happens only here, at construction, so code that runs per token (and
// may be captured in a CUDA graph) never allocates.
#include <cuda_runtime_api.h>

#include <cstddef>
#include <utility>
#include <vector>

#include "backend/cuda/cuda_check.h"

namespace deltainfer::cuda {

template <typename T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t count) : count_(count) {
    if (count > 0) {
      void* raw = nullptr;
      CUDA_CHECK(cudaMalloc(&raw, count * sizeof(T)));
      data_ = static_cast<T*>(raw);
    }
  }
  ~DeviceBuffer() { release(); }

  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), count_(std::exchange(other.count_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept {
    if (this != &other) {
      release();
      data_ = std::exchange(other.data_, nullptr);
      count_ = std::exchange(other.count_, 0);
    }
    return *this;
  }

  T* data() { return data_; }
  const T* data() const { return data_; }
  size_t size() const { return count_; }
  size_t bytes() const { return count_ * sizeof(T); }

  // Synchronous copies for setup and tests (never on the per-token path).
  void upload(const std::vector<T>& host) {
    if (host.size() != count_) throw_error("DeviceBuffer::upload: {} elements into {}", host.size(), count_);
    CUDA_CHECK(cudaMemcpy(data_, host.data(), bytes(), cudaMemcpyHostToDevice));
  }
  std::vector<T> download() const {
    std::vector<T> host(count_);
    CUDA_CHECK(cudaMemcpy(host.data(), data_, bytes(), cudaMemcpyDeviceToHost));
    return host;
  }
  // Fills every byte with `byte` (tests poison outputs with 0xFF: NaN for bf16 and f32).
  void fill_bytes(int byte) { CUDA_CHECK(cudaMemset(data_, byte, bytes())); }

 private:
  void release() noexcept {
    if (data_ != nullptr) cudaFree(data_);  // no throw from a destructor; a failed free leaks
    data_ = nullptr;
    count_ = 0;
  }

  T* data_ = nullptr;
  size_t count_ = 0;
};

template <typename T>
DeviceBuffer<T> to_device(const std::vector<T>& host) {
  DeviceBuffer<T> buffer(host.size());
  if (!host.empty()) buffer.upload(host);
  return buffer;
}

}  // namespace deltainfer::cuda
