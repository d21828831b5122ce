#include "backend/cuda/hardware_rates.h"

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <vector>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/device_buffer.h"
#include "backend/cuda/gemm.h"

namespace deltainfer::cuda {
namespace {

constexpr int kWarmups = 2;
constexpr int kRepetitions = 10;
constexpr size_t kCopyBytes = size_t{2} << 30;  // far past the 50 MB L2: every byte goes to HBM
constexpr int kGemmSize = 8192;                 // large enough for cuBLASLt's best Hopper kernels

// Owns a stream and two events; milliseconds of one run of `work` on that stream.
class StreamTimer {
 public:
  StreamTimer() {
    CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    CUDA_CHECK(cudaEventCreate(&start_));
    CUDA_CHECK(cudaEventCreate(&stop_));
  }
  ~StreamTimer() {
    cudaEventDestroy(stop_);
    cudaEventDestroy(start_);
    cudaStreamDestroy(stream_);
  }
  StreamTimer(const StreamTimer&) = delete;
  StreamTimer& operator=(const StreamTimer&) = delete;

  cudaStream_t stream() const { return stream_; }

  template <typename Work>
  double median_ms(Work work) {
    for (int i = 0; i < kWarmups; ++i) work();
    std::vector<float> ms(kRepetitions);
    for (float& one : ms) {
      CUDA_CHECK(cudaEventRecord(start_, stream_));
      work();
      CUDA_CHECK(cudaEventRecord(stop_, stream_));
      CUDA_CHECK(cudaEventSynchronize(stop_));
      CUDA_CHECK(cudaEventElapsedTime(&one, start_, stop_));
    }
    std::nth_element(ms.begin(), ms.begin() + kRepetitions / 2, ms.end());
    return ms[kRepetitions / 2];
  }

 private:
  cudaStream_t stream_ = nullptr;
  cudaEvent_t start_ = nullptr;
  cudaEvent_t stop_ = nullptr;
};

double copy_tbps_with(StreamTimer& timer) {
  DeviceBuffer<unsigned char> src(kCopyBytes), dst(kCopyBytes);
  CUDA_CHECK(cudaMemsetAsync(src.data(), 1, kCopyBytes, timer.stream()));
  const double ms = timer.median_ms([&] {
    CUDA_CHECK(cudaMemcpyAsync(dst.data(), src.data(), kCopyBytes, cudaMemcpyDeviceToDevice, timer.stream()));
  });
  return 2.0 * static_cast<double>(kCopyBytes) / (ms * 1e-3) / 1e12;
}

double gemm_tflops_with(StreamTimer& timer) {
  const size_t elements = static_cast<size_t>(kGemmSize) * kGemmSize;
  DeviceBuffer<__nv_bfloat16> x(elements), weight(elements), y(elements);
  // Zero bytes are bf16 zeros: finite inputs, and the tensor cores' speed does not depend on values.
  CUDA_CHECK(cudaMemsetAsync(x.data(), 0, elements * sizeof(__nv_bfloat16), timer.stream()));
  CUDA_CHECK(cudaMemsetAsync(weight.data(), 0, elements * sizeof(__nv_bfloat16), timer.stream()));
  Gemm gemm;
  const double ms = timer.median_ms(
      [&] { gemm.run(x.data(), weight.data(), y.data(), kGemmSize, kGemmSize, kGemmSize, timer.stream()); });
  const double flops = 2.0 * kGemmSize * static_cast<double>(kGemmSize) * kGemmSize;
  return flops / (ms * 1e-3) / 1e12;
}

}  // namespace

double measure_copy_tbps() {
  StreamTimer timer;
  return copy_tbps_with(timer);
}

double measure_gemm_tflops() {
  StreamTimer timer;
  return gemm_tflops_with(timer);
}

HardwareRates measure_hardware_rates() {
  StreamTimer timer;
  HardwareRates rates;
  rates.copy_tbps = copy_tbps_with(timer);
  rates.gemm_tflops = gemm_tflops_with(timer);
  return rates;
}

}  // namespace deltainfer::cuda
