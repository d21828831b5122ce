// The host-side hang watchdog (stream_watchdog.h): it returns the stream's status for work that
// ends within the limit, and ends the process with its message for work that does not. The
// "hanging" kernel spins for a bounded number of cycles (a few seconds), so the device is never
// left with a kernel that does not end, whatever the watchdog does.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>

#include "stream_watchdog.h"

namespace deltainfer::cuda::test {
namespace {

__global__ void spin_cycles(long long cycles) {
  const long long start = clock64();
  while (clock64() - start < cycles) {
  }
}

// One thread spinning for `cycles` SM clock cycles on the default stream.
cudaError_t launch_spin(long long cycles) {
  spin_cycles<<<1, 1>>>(cycles);
  return cudaGetLastError();
}

TEST(StreamWatchdogTest, ReturnsTheStatusOfWorkThatEnds) {
  ASSERT_EQ(launch_spin(1000000), cudaSuccess);  // well under a millisecond
  EXPECT_EQ(sync_or_exit(nullptr, "short spin", std::chrono::seconds(30)), cudaSuccess);
}

TEST(StreamWatchdogDeathTest, EndsTheProcessWhenWorkOutlivesTheLimit) {
  // The child re-executes this binary for this test alone, with a CUDA context of its own.
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        if (launch_spin(1ll << 33) != cudaSuccess) std::exit(2);  // > 4 s at 2 GHz
        sync_or_exit(nullptr, "long spin", std::chrono::seconds(1));
        std::exit(0);  // reached only if the watchdog let the spin pass
      },
      ::testing::ExitedWithCode(EXIT_FAILURE), "long spin still running");
}

}  // namespace
}  // namespace deltainfer::cuda::test
