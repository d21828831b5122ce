#include "core/thread_pool.h"

#include <map>
#include <memory>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define DI_CPU_RELAX() _mm_pause()
#else
#define DI_CPU_RELAX() std::this_thread::yield()
#endif

namespace deltainfer {
namespace {

// ~0.1 ms of spinning: bridges the gap between the matmuls of one layer; longer spins showed up
// as a quarter of all cycles on a busy 2-core machine (attention runs between the layers' matmuls).
constexpr int kSpinIterations = 4000;

thread_local bool running_a_task = false;

}  // namespace

ThreadPool::ThreadPool(int threads) {
  for (int i = 1; i < threads; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  {
    const std::lock_guard<std::mutex> lock(wake_mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  for (std::thread& worker : workers_) worker.join();
}

bool ThreadPool::in_task() { return running_a_task; }

void ThreadPool::take_tasks(Job& job, int worker) {
  int64_t finished = 0;
  running_a_task = true;
  for (int64_t i = job.next.fetch_add(1); i < job.count; i = job.next.fetch_add(1), ++finished) {
    job.task.call(job.task.object, i, worker);
  }
  running_a_task = false;
  if (finished != 0) job.done.fetch_add(finished, std::memory_order_release);
}

void ThreadPool::run_erased(int64_t count, TaskRef task) {
  const std::lock_guard<std::mutex> lock(job_mutex_);
  if (workers_.empty() || count <= 1) {
    running_a_task = true;
    for (int64_t i = 0; i < count; ++i) task.call(task.object, i, 0);
    running_a_task = false;
    return;
  }
  const uint64_t generation = generation_.load() + 1;
  Job& job = jobs_[generation % 2];
  // A worker that woke for the job before last may still be looking at this slot.
  while (job.active.load() != 0) DI_CPU_RELAX();
  job.task = task;
  job.count = count;
  job.next.store(0);
  job.done.store(0);
  generation_.store(generation);  // publishes the slot (seq_cst: pairs with the sleepers_ check)
  if (sleepers_.load() != 0) {
    const std::lock_guard<std::mutex> wake_lock(wake_mutex_);
    wake_.notify_all();
  }
  take_tasks(job, 0);
  // Only tasks a worker has claimed are left; yield rather than spin once it is late: on a loaded
  // machine it may be waiting for this very core.
  for (int spins = 0; job.done.load(std::memory_order_acquire) != count; ++spins) {
    if (spins < kSpinIterations) {
      DI_CPU_RELAX();
    } else {
      std::this_thread::yield();
    }
  }
}

void ThreadPool::wait_for_job(uint64_t seen) {
  for (int spins = 0; spins < kSpinIterations; ++spins) {
    if (generation_.load(std::memory_order_acquire) != seen || stop_.load(std::memory_order_relaxed)) return;
    DI_CPU_RELAX();
  }
  std::unique_lock<std::mutex> lock(wake_mutex_);
  sleepers_.fetch_add(1);  // seq_cst, before the predicate reads generation_: no lost wake-up
  wake_.wait(lock, [&] { return stop_ || generation_.load() != seen; });
  sleepers_.fetch_sub(1);
}

void ThreadPool::worker_loop(int worker) {
  uint64_t seen = 0;
  while (true) {
    wait_for_job(seen);
    if (stop_) return;
    const uint64_t generation = generation_.load();
    seen = generation;
    Job& job = jobs_[generation % 2];
    job.active.fetch_add(1);
    // Still the current job once registered as active: then the caller does not refill this slot
    // before we leave it (it waits for active == 0 two jobs later).
    if (generation_.load() == generation) take_tasks(job, worker);
    job.active.fetch_sub(1);
  }
}

ThreadPool& ThreadPool::shared(int threads) {
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  static std::mutex mutex;
  static std::map<int, std::unique_ptr<ThreadPool>> pools;
  const std::lock_guard<std::mutex> lock(mutex);
  std::unique_ptr<ThreadPool>& pool = pools[threads];
  if (!pool) pool = std::make_unique<ThreadPool>(threads);
  return *pool;
}

}  // namespace deltainfer
