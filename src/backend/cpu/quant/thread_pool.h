#pragma once
// A persistent pool for the quantized matmul: a decode step runs ~200 small matmuls, and starting
// threads for each (as attention/parallel_for.h does) would cost more than the products. Idle
// workers spin briefly for the next job, then sleep.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace deltainfer::backend::cpu::quant {

class ThreadPool {
 public:
  explicit ThreadPool(int threads);  // threads counts the caller, which takes part in each job
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int threads() const { return static_cast<int>(workers_.size()) + 1; }

  // Runs task(i) for every i in [0, count), spread over the threads; returns when all are done.
  // Tasks must not throw. One job at a time: calls from several threads are serialized.
  void run(int64_t count, const std::function<void(int64_t)>& task);

  // The pool of `threads` threads (0: one per hardware thread), created on first use.
  static ThreadPool& shared(int threads);

 private:
  void worker_loop();
  void take_tasks();

  std::vector<std::thread> workers_;
  std::mutex job_mutex_;   // one job at a time
  std::mutex wake_mutex_;  // guards sleeping
  std::condition_variable wake_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int64_t> next_{0};
  std::atomic<int> busy_workers_{0};
  std::atomic<bool> stop_{false};
  const std::function<void(int64_t)>* task_ = nullptr;
  int64_t count_ = 0;
};

}  // namespace deltainfer::backend::cpu::quant
