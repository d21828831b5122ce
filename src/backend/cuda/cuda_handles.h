#pragma once
// Owners of CUDA runtime objects the transformer holds: a non-blocking stream, pinned host memory
// (what a captured graph copies from and to), and an instantiated graph.
#include <cuda_runtime_api.h>

#include <cstddef>

#include "backend/cuda/cuda_check.h"

namespace deltainfer::cuda {

class CudaStream {
 public:
  CudaStream() { CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking)); }
  ~CudaStream() { cudaStreamDestroy(stream_); }
  CudaStream(const CudaStream&) = delete;
  CudaStream& operator=(const CudaStream&) = delete;
  cudaStream_t get() const { return stream_; }

 private:
  cudaStream_t stream_ = nullptr;
};

template <typename T>
class PinnedBuffer {
 public:
  explicit PinnedBuffer(size_t count) {
    void* raw = nullptr;
    CUDA_CHECK(cudaMallocHost(&raw, count * sizeof(T)));
    data_ = static_cast<T*>(raw);
  }
  ~PinnedBuffer() { cudaFreeHost(data_); }
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;
  T* data() { return data_; }

 private:
  T* data_ = nullptr;
};

class DecodeGraph {
 public:
  DecodeGraph() = default;
  ~DecodeGraph() {
    if (exec_ != nullptr) cudaGraphExecDestroy(exec_);
    if (graph_ != nullptr) cudaGraphDestroy(graph_);
  }
  DecodeGraph(const DecodeGraph&) = delete;
  DecodeGraph& operator=(const DecodeGraph&) = delete;

  template <typename Body>
  void capture(cudaStream_t stream, Body&& body) {
    CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
    try {
      body();
    } catch (...) {
      cudaGraph_t broken = nullptr;
      cudaStreamEndCapture(stream, &broken);
      if (broken != nullptr) cudaGraphDestroy(broken);
      throw;
    }
    CUDA_CHECK(cudaStreamEndCapture(stream, &graph_));
    CUDA_CHECK(cudaGraphInstantiate(&exec_, graph_, 0));
  }
  void launch(cudaStream_t stream) const { CUDA_CHECK(cudaGraphLaunch(exec_, stream)); }

 private:
  cudaGraph_t graph_ = nullptr;
  cudaGraphExec_t exec_ = nullptr;
};

}  // namespace deltainfer::cuda
