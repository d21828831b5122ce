#pragma once
// Hopper (sm_90a) asynchronous-pipeline primitives as thin PTX wrappers: mbarriers (the full /
// empty handshakes of a shared-memory ring), TMA tensor loads that complete on an mbarrier,
// warpgroup register reallocation and named barriers. All shared-memory addresses are 32-bit
// shared-window addresses (smem_u32 / __cvta_generic_to_shared); every mbarrier is 8 bytes,
// 8-byte aligned.

#include <cuda.h>

#include <cstdint>

namespace deltainfer::cuda::hopper {

// Sets the barrier's expected arrival count for each phase (phase 0 starts now).
__device__ __forceinline__ void mbar_init(uint32_t bar, uint32_t arrivals) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(arrivals) : "memory");
}

// Makes the initialised barriers visible to the async proxy (TMA) and the other threads; call
// once after the inits, before the __syncthreads that publishes them.
__device__ __forceinline__ void mbar_fence_init() {
  asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
}

// One arrival that also raises the phase's expected transaction bytes: the phase completes when
// all arrivals are in and `bytes` of TMA data have landed (the producer's "tile is coming").
__device__ __forceinline__ void mbar_arrive_expect_tx(uint32_t bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes)
               : "memory");
}

// One plain arrival (a consumer's "stage is free again").
__device__ __forceinline__ void mbar_arrive(uint32_t bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}

// True once the phase with the given parity has completed (try_wait may suspend the thread for a
// hardware-chosen time before answering false).
__device__ __forceinline__ bool mbar_try_wait(uint32_t bar, uint32_t parity) {
  uint32_t done;
  asm volatile(
      "{\n.reg .pred p;\n"
      "mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n"
      "selp.u32 %0, 1, 0, p;\n}\n"
      : "=r"(done)
      : "r"(bar), "r"(parity)
      : "memory");
  return done != 0;
}

// Blocks until the phase of the given parity has completed. Phase k of a barrier has parity
// k & 1; a fresh barrier counts as having completed the phase before phase 0 (parity 1), which
// is how a producer's first wait on an "empty" barrier passes at once.
__device__ __forceinline__ void mbar_wait(uint32_t bar, uint32_t parity) {
  while (!mbar_try_wait(bar, parity)) {
  }
}

// mbar_wait that traps after ~2^32 clock cycles (about 2 s at 1.98 GHz): a protocol bug (a
// miscounted expect_tx, a missing arrive) then fails the launch with an error the host sees
// instead of wedging the device. The check sits on the retry branch only, but a `trap` in a
// warpgroup that raised its registers with setmaxnreg makes ptxas fall back to the launch-bound
// register budget there (observed with CUDA 13.0: 168 instead of 240 registers, spills and
// serialized wgmmas), so kernels use it where few registers are needed (producers).
__device__ __forceinline__ void mbar_wait_or_trap(uint32_t bar, uint32_t parity) {
  if (mbar_try_wait(bar, parity)) return;
  const long long start = clock64();
  while (!mbar_try_wait(bar, parity)) {
    if (clock64() - start > (1ll << 32)) asm volatile("trap;\n");
  }
}

// TMA: one box of the 3-D tensor map at coordinates (c0 innermost, c1, c2) into shared memory
// at dst (aligned as the map's swizzle requires: 1024 bytes for 128B swizzle); its bytes count
// toward the barrier's expected transaction bytes when they land. Elements outside the map's extents arrive as zeros and
// still count toward the transaction bytes (partial boxes; a box wholly outside the tensor is
// best avoided: callers here never issue one).
__device__ __forceinline__ void tma_load_3d(uint32_t dst, const CUtensorMap* map, uint32_t bar,
                                            int c0, int c1, int c2) {
  asm volatile(
      "cp.async.bulk.tensor.3d.shared::cluster.global.mbarrier::complete_tx::bytes"
      " [%0], [%1, {%3, %4, %5}], [%2];\n" ::"r"(dst),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(bar), "r"(c0), "r"(c1), "r"(c2)
      : "memory");
}

// Hints the tensor map (a __grid_constant__ kernel parameter) into the descriptor cache before
// the first load that uses it.
__device__ __forceinline__ void tma_prefetch_map(const CUtensorMap* map) {
  asm volatile("prefetch.tensormap [%0];\n" ::"l"(reinterpret_cast<uint64_t>(map)) : "memory");
}

// Warpgroup register reallocation: every thread of the warpgroup must execute it with the same
// count (a multiple of 8 in [24, 256]). A producer warpgroup drops to few registers so that the
// consumer warpgroups can grow; the CTA's total must stay within the register file the launch
// reserved (threads x __launch_bounds__-derived count).
template <int kRegs>
__device__ __forceinline__ void setmaxnreg_dec() {
  asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(kRegs));
}
template <int kRegs>
__device__ __forceinline__ void setmaxnreg_inc() {
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(kRegs));
}

// Named barriers (ids 1..15; 0 is __syncthreads). bar_sync waits until `threads` threads have
// arrived (itself included); bar_arrive counts towards it without waiting. threads is a multiple
// of 32; a warp arrives as a whole.
__device__ __forceinline__ void bar_sync(int id, int threads) {
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}
__device__ __forceinline__ void bar_arrive(int id, int threads) {
  asm volatile("bar.arrive %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}

}  // namespace deltainfer::cuda::hopper
