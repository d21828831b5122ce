#pragma once
// Runs task(index, worker) for index in [0, count) on up to `threads` threads (the caller is one of
// them); worker in [0, threads) names per-thread scratch. The first exception is rethrown.
// While the tasks run, OpenBLAS is held to one thread: its own pool, entered from several of our
// threads at once, serializes and oversubscribes (measured 20x slower on 2 cores).
#include <cblas.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace deltainfer::attention {

template <typename Task>
void parallel_for(int64_t count, int threads, const Task& task) {
  const int workers = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(threads, count)));
  std::atomic<int64_t> next{0};
  std::exception_ptr failure;
  std::mutex failure_mutex;
  auto work = [&](int worker) {
    try {
      for (int64_t index = next++; index < count; index = next++) task(index, worker);
    } catch (...) {
      const std::lock_guard<std::mutex> lock(failure_mutex);
      if (!failure) failure = std::current_exception();
      next = count;
    }
  };
  if (workers == 1) {
    for (int64_t index = 0; index < count; ++index) task(index, 0);
    return;
  }
  const int blas_threads = openblas_get_num_threads();
  openblas_set_num_threads(1);
  std::vector<std::thread> pool;
  for (int worker = 1; worker < workers; ++worker) pool.emplace_back(work, worker);
  work(0);
  for (std::thread& thread : pool) thread.join();
  openblas_set_num_threads(blas_threads);
  if (failure) std::rethrow_exception(failure);
}

}  // namespace deltainfer::attention
