#pragma once
// A persistent pool for the CPU backend's quantized matmuls and attention: a decode step runs
// ~150-250 small jobs, and starting threads for each would cost more than the work. Idle workers
// spin briefly for the next job, then sleep. In core so that attention (below the backend) and the
// backend's matmuls share one pool: two pools would put twice the threads on the cores.
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

namespace deltainfer {

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
    run_erased(count, {&task, [](const void* object, int64_t i, int) { (*static_cast<const Task*>(object))(i); }});
  }

  // As run, calling task(i, worker) where worker in [0, threads()) names the thread running it (the
  // caller is 0), for per-thread scratch: no two tasks with the same worker run at once.
  template <typename Task>
  void run_per_worker(int64_t count, const Task& task) {
    run_erased(count, {&task, [](const void* object, int64_t i, int worker) {
                         (*static_cast<const Task*>(object))(i, worker);
                       }});
  }

  // True on a thread while it runs a task of any pool: a job started from inside a task would wait
  // for the job it is part of, so callers that may nest run inline instead.
  static bool in_task();

  // The pool of `threads` threads (0: one per hardware thread), created on first use.
  static ThreadPool& shared(int threads);

 private:
  // A task without the allocation a std::function of a capturing lambda may make per job.
  struct TaskRef {
    const void* object;
    void (*call)(const void*, int64_t, int);
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
  void worker_loop(int worker);
  void wait_for_job(uint64_t seen);
  static void take_tasks(Job& job, int worker);

  std::vector<std::thread> workers_;
  std::mutex job_mutex_;   // one job at a time
  std::mutex wake_mutex_;  // guards sleeping
  std::condition_variable wake_;
  Job jobs_[2];
  std::atomic<uint64_t> generation_{0};  // the job now running is jobs_[generation_ % 2]
  std::atomic<int> sleepers_{0};
  std::atomic<bool> stop_{false};
};

}  // namespace deltainfer
