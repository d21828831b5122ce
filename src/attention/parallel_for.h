#pragma once
// Runs task(index, worker) for index in [0, count) on up to `threads` threads (the caller is one of
// them); worker in [0, threads) names per-thread scratch. The first exception is rethrown.
// The threads are the persistent pool the CPU backend's matmuls use (core/thread_pool.h): a decode
// step calls this once per layer, and starting threads each time cost more than the attention of a
// short context. Called from inside a pool task it runs inline.
// While the tasks run, OpenBLAS is held to one thread: its own pool, entered from several of our
// threads at once, serializes and oversubscribes (measured 20x slower on 2 cores).
#include <cblas.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
#include <mutex>

#include "core/thread_pool.h"

namespace deltainfer::attention {

template <typename Task>
void parallel_for(int64_t count, int threads, const Task& task) {
  const int workers = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(threads, count)));
  if (workers == 1 || ThreadPool::in_task()) {
    for (int64_t index = 0; index < count; ++index) task(index, 0);
    return;
  }
  std::atomic<bool> failed{false};
  std::exception_ptr failure;
  std::mutex failure_mutex;
  const int blas_threads = openblas_get_num_threads();
  openblas_set_num_threads(1);
  // Pool tasks must not throw: the first failure is kept and the remaining tasks are skipped.
  ThreadPool::shared(threads).run_per_worker(count, [&](int64_t index, int worker) {
    if (failed.load(std::memory_order_relaxed)) return;
    try {
      task(index, worker);
    } catch (...) {
      const std::lock_guard<std::mutex> lock(failure_mutex);
      if (!failure) failure = std::current_exception();
      failed = true;
    }
  });
  openblas_set_num_threads(blas_threads);
  if (failure) std::rethrow_exception(failure);
}

}  // namespace deltainfer::attention
