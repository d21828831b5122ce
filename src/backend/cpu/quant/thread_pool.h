#pragma once
// A persistent pool for the quantized matmul: a decode step runs ~150-200 small jobs, and starting
// threads for each (as attention/parallel_for.h does) would cost more than the products. Idle
// workers spin briefly for the next job, then sleep.
//
// The caller takes part in every job and never waits for a worker that has not started: a worker
// asleep (or descheduled on a loaded machine) when a job begins simply finds no tasks left when it
// wakes. Waiting for it instead cost a futex wake-up per matmul (~10% of a decode step, measured).
#include <atomic>
#include <condition_variable>
#include <cstdint>
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
  template <typename Task>
  void run(int64_t count, const Task& task) {
    run_erased(count, {&task, [](const void* object, int64_t i) { (*static_cast<const Task*>(object))(i); }});
  }

  // The pool of `threads` threads (0: one per hardware thread), created on first use.
  static ThreadPool& shared(int threads);

 private:
  // A task without the allocation a std::function of a capturing lambda may make per job.
  struct TaskRef {
    const void* object;
    void (*call)(const void*, int64_t);
  };

  // Two slots, used by jobs in turn: a worker that woke for a job which has since ended may still
  // be reading its slot (`active`) while the next job fills the other one.
  struct alignas(64) Job {
    TaskRef task{nullptr, nullptr};
    int64_t count = 0;
    std::atomic<int64_t> next{0};
    std::atomic<int64_t> done{0};
    std::atomic<int> active{0};
  };

  void run_erased(int64_t count, TaskRef task);
  void worker_loop();
  void wait_for_job(uint64_t seen);
  static void take_tasks(Job& job);

  std::vector<std::thread> workers_;
  std::mutex job_mutex_;   // one job at a time
  std::mutex wake_mutex_;  // guards sleeping
  std::condition_variable wake_;
  Job jobs_[2];
  std::atomic<uint64_t> generation_{0};  // the job now running is jobs_[generation_ % 2]
  std::atomic<int> sleepers_{0};
  std::atomic<bool> stop_{false};
};

}  // namespace deltainfer::backend::cpu::quant
