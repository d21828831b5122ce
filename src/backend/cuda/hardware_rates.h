#pragma once
// The device's ceilings, measured, for benchmarks that print their floors beside their times: the
// device-to-device copy rate (bytes read + written per second: what a bandwidth-bound step can
// reach) and the dense bf16 GEMM rate through cuBLASLt (what a compute-bound one can). Measured in
// the run that uses them rather than looked up, so a floor's "% of the hardware limit" is of this
// device, clocks and driver (docs/BENCHMARKS.md).
namespace deltainfer::cuda {

struct HardwareRates {
  double copy_tbps = 0.0;    // 2 GiB cudaMemcpy device to device, (read + write) bytes / s / 1e12
  double gemm_tflops = 0.0;  // 8192^3 bf16 GEMM, f32 accumulation, bf16 output: 2 m n k / s / 1e12
};

// Each rate is the median of 10 timed repetitions after 2 warm-ups, on the current device and a
// stream of its own; the buffers (4 GiB for the copy, 384 MiB for the GEMM) are freed before
// returning, so call these before the model allocates. Throws deltainfer::Error when allocation or
// a launch fails.
double measure_copy_tbps();
double measure_gemm_tflops();
HardwareRates measure_hardware_rates();  // both

}  // namespace deltainfer::cuda
