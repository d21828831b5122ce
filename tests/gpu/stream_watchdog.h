#pragma once
// Host-side hang watchdog for GPU tests of kernels with device-side waits (mbarriers, named
// barriers): cudaStreamSynchronize on a kernel stuck in such a wait would block this process,
// and the device with it, forever. sync_or_exit polls the stream instead and, past the limit,
// reports what hung and ends the process: only tearing down the CUDA context stops a running
// kernel. ctest runs each discovered gtest case in its own process, so the hung case fails and
// the following ones run on a fresh context.
#include <cuda_runtime.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

namespace deltainfer::cuda::test {

// Waits for all work on `stream`; returns its error (cudaSuccess when it finished cleanly).
inline cudaError_t sync_or_exit(cudaStream_t stream, const std::string& what,
                                std::chrono::seconds limit = std::chrono::seconds(60)) {
  const auto start = std::chrono::steady_clock::now();
  for (;;) {
    const cudaError_t err = cudaStreamQuery(stream);
    if (err != cudaErrorNotReady) return err;
    if (std::chrono::steady_clock::now() - start > limit) {
      std::fprintf(stderr, "[watchdog] %s still running after %lld s: the kernel hangs; exiting\n",
                   what.c_str(), static_cast<long long>(limit.count()));
      std::fflush(stderr);
      std::_Exit(EXIT_FAILURE);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

}  // namespace deltainfer::cuda::test
