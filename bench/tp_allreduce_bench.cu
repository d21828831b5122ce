// The collectives of --tensor-parallel, timed over every visible GPU (skips below 2): the f32
// all-reduce of one step's residual rows (rows x d_model, 2 per layer + 1 after the embedding) and
// the all-gather of the logits (rows x ceil(vocab / world)), giving the collectives' time per
// decode step; and a large all-reduce for NCCL's bus bandwidth on this machine,
// busBW = 2(n-1)/n x bytes / time (nccl-tests' definition), to set the per-step time against.
//   tp_allreduce_bench [--d-model 4096] [--layers 32] [--vocab 128256] [--world N]
// Prints RESULT lines (scripts/gpu-check and scripts/gpu-tp-check collect them).
#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "bench_support.cuh"

#if DELTAINFER_NCCL
#include "backend/cuda/nccl_communicators.h"
#endif

namespace {

struct Shape {
  int d_model = 4096;  // Llama-3.1-8B
  int layers = 32;
  int vocab = 128256;
  int world = 0;  // 0: every visible GPU
};

Shape parse(int argc, char** argv) {
  Shape s;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const int value = std::atoi(argv[i + 1]);
    if (flag == "--d-model") s.d_model = value;
    else if (flag == "--layers") s.layers = value;
    else if (flag == "--vocab") s.vocab = value;
    else if (flag == "--world") s.world = value;
  }
  return s;
}

#if DELTAINFER_NCCL

using deltainfer::cuda::NcclCommunicators;

// Runs `body(rank, stream)` `iterations` times on every rank at once; rank 0's CUDA-event time per
// iteration (the mean), in ms (the collectives keep the ranks in step).
double time_collective(const NcclCommunicators& comms, int iterations,
                       const std::function<void(int, cudaStream_t)>& body) {
  double ms = 0.0;
  std::vector<std::thread> threads;
  for (int r = 0; r < comms.world(); ++r) {
    threads.emplace_back([&, r] {
      bench_support::check(cudaSetDevice(r), "cudaSetDevice");
      cudaStream_t stream;
      bench_support::check(cudaStreamCreate(&stream), "cudaStreamCreate");
      for (int i = 0; i < 5; ++i) body(r, stream);  // warm-up: NCCL sets up its channels on first use
      cudaEvent_t start, stop;
      bench_support::check(cudaEventCreate(&start), "cudaEventCreate");
      bench_support::check(cudaEventCreate(&stop), "cudaEventCreate");
      bench_support::check(cudaStreamSynchronize(stream), "sync");
      bench_support::check(cudaEventRecord(start, stream), "record");
      for (int i = 0; i < iterations; ++i) body(r, stream);
      bench_support::check(cudaEventRecord(stop, stream), "record");
      bench_support::check(cudaEventSynchronize(stop), "sync");
      float elapsed = 0.0f;
      bench_support::check(cudaEventElapsedTime(&elapsed, start, stop), "elapsed");
      if (r == 0) ms = static_cast<double>(elapsed) / iterations;
      cudaEventDestroy(start);
      cudaEventDestroy(stop);
      cudaStreamDestroy(stream);
    });
  }
  for (std::thread& t : threads) t.join();
  return ms;
}

std::vector<float*> allocate_per_rank(int world, size_t floats) {
  std::vector<float*> buffers(static_cast<size_t>(world));
  for (int r = 0; r < world; ++r) {
    bench_support::check(cudaSetDevice(r), "cudaSetDevice");
    bench_support::check(cudaMalloc(&buffers[static_cast<size_t>(r)], floats * sizeof(float)), "cudaMalloc");
    bench_support::check(cudaMemset(buffers[static_cast<size_t>(r)], 0, floats * sizeof(float)), "cudaMemset");
  }
  return buffers;
}

void free_per_rank(std::vector<float*>& buffers) {
  for (size_t r = 0; r < buffers.size(); ++r) {
    cudaSetDevice(static_cast<int>(r));
    cudaFree(buffers[r]);
  }
}

int run(const Shape& shape, int world) {
  const NcclCommunicators comms(world);
  const double n = world;

  // NCCL's bus bandwidth on this machine: a 256 MiB f32 all-reduce.
  const size_t big = size_t{64} << 20;
  std::vector<float*> big_buffers = allocate_per_rank(world, big);
  const double big_ms = time_collective(comms, 20, [&](int r, cudaStream_t s) {
    comms.sum(r, big_buffers[static_cast<size_t>(r)], static_cast<int64_t>(big), s);
  });
  free_per_rank(big_buffers);
  const double bytes = static_cast<double>(big) * sizeof(float);
  const double bus_gbs = 2.0 * (n - 1.0) / n * bytes / (big_ms * 1e-3) / 1e9;
  std::printf("RESULT op=allreduce_bus world=%d bytes=%.0f ms=%.3f busbw_GBs=%.1f\n", world, bytes, big_ms, bus_gbs);

  const int stride = (shape.vocab + world - 1) / world;
  for (int rows : {1, 8, 32}) {
    const size_t residual = static_cast<size_t>(rows) * shape.d_model;
    const size_t logits = static_cast<size_t>(rows) * stride;
    std::vector<float*> x = allocate_per_rank(world, residual);
    std::vector<float*> mine = allocate_per_rank(world, logits);
    std::vector<float*> gathered = allocate_per_rank(world, logits * static_cast<size_t>(world));
    const double reduce_ms = time_collective(comms, 200, [&](int r, cudaStream_t s) {
      comms.sum(r, x[static_cast<size_t>(r)], static_cast<int64_t>(residual), s);
    });
    const double gather_ms = time_collective(comms, 200, [&](int r, cudaStream_t s) {
      comms.all_gather(r, mine[static_cast<size_t>(r)], gathered[static_cast<size_t>(r)], static_cast<int64_t>(logits), s);
    });
    const int reduces_per_step = 2 * shape.layers + 1;
    const double step_ms = reduces_per_step * reduce_ms + gather_ms;
    const double reduce_bus = 2.0 * (n - 1.0) / n * static_cast<double>(residual * sizeof(float)) / (reduce_ms * 1e-3) / 1e9;
    std::printf(
        "RESULT op=decode_step world=%d rows=%d allreduce_us=%.1f allreduce_busbw_GBs=%.1f per_step=%d "
        "gather_us=%.1f collectives_ms_per_step=%.3f nccl_busbw_GBs=%.1f\n",
        world, rows, reduce_ms * 1e3, reduce_bus, reduces_per_step, gather_ms * 1e3, step_ms, bus_gbs);
    free_per_rank(x);
    free_per_rank(mine);
    free_per_rank(gathered);
  }
  return 0;
}

#endif

}  // namespace

int main(int argc, char** argv) {
  const Shape shape = parse(argc, argv);
  int devices = 0;
  bench_support::check(cudaGetDeviceCount(&devices), "cudaGetDeviceCount");
  const int world = shape.world > 0 ? shape.world : devices;
  if (world < 2 || world > devices) {
    std::printf("tp_allreduce_bench: needs 2 or more GPUs (world %d, %d visible); skipped\n", world, devices);
    return 0;
  }
#if DELTAINFER_NCCL
  return run(shape, world);
#else
  std::printf("tp_allreduce_bench: this build has no NCCL; skipped\n");
  return 0;
#endif
}
