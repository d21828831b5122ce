#include "core/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

namespace deltainfer {
namespace {

TEST(ThreadPool, RunsEveryTaskExactlyOnceJobAfterJob) {
  for (int threads : {1, 2, 4}) {
    ThreadPool pool(threads);
    EXPECT_EQ(pool.threads(), threads);
    for (int64_t count : {0, 1, 5, 1000}) {
      for (int repeat = 0; repeat < 50; ++repeat) {
        std::vector<std::atomic<int>> hits(static_cast<size_t>(count));
        pool.run(count, [&](int64_t i) { hits[static_cast<size_t>(i)].fetch_add(1); });
        for (int64_t i = 0; i < count; ++i) ASSERT_EQ(hits[static_cast<size_t>(i)].load(), 1) << threads << " " << i;
      }
    }
  }
}

// Many short jobs back to back: workers often wake for a job the caller has already finished, and
// must neither run a task of the next job twice nor miss one. Plain (non-atomic) writes by the
// tasks must be visible to the caller once run returns.
TEST(ThreadPool, BackToBackShortJobsRunEachTaskOnce) {
  for (int threads : {2, 3}) {
    ThreadPool pool(threads);
    std::vector<int> written(4);
    for (int job = 0; job < 20000; ++job) {
      const int64_t count = 1 + job % 4;
      pool.run(count, [&](int64_t i) { written[static_cast<size_t>(i)] += 1 + job; });
      for (int64_t i = 0; i < count; ++i) {
        ASSERT_EQ(written[static_cast<size_t>(i)], 1 + job) << "job " << job << " task " << i;
        written[static_cast<size_t>(i)] = 0;
      }
    }
  }
}

// Jobs far apart in time find the workers asleep (past their spin): they are woken, and a job
// completes whether or not they come in time.
TEST(ThreadPool, JobsAfterTheWorkersSleptComplete) {
  ThreadPool pool(3);
  for (int job = 0; job < 5; ++job) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    std::vector<std::atomic<int>> hits(64);
    pool.run(64, [&](int64_t i) { hits[static_cast<size_t>(i)].fetch_add(1); });
    for (const std::atomic<int>& hit : hits) ASSERT_EQ(hit.load(), 1);
  }
}

TEST(ThreadPool, PerWorkerTasksNeverShareAWorkerAtOnce) {
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    std::vector<std::atomic<int>> busy(static_cast<size_t>(threads));
    std::vector<std::atomic<int>> runs(1000);
    std::atomic<int> clashes{0}, out_of_range{0};
    pool.run_per_worker(static_cast<int64_t>(runs.size()), [&](int64_t i, int worker) {
      if (worker < 0 || worker >= threads) {
        ++out_of_range;
        return;
      }
      if (busy[static_cast<size_t>(worker)].fetch_add(1) != 0) ++clashes;
      EXPECT_TRUE(ThreadPool::in_task());
      ++runs[static_cast<size_t>(i)];
      busy[static_cast<size_t>(worker)].fetch_sub(1);
    });
    EXPECT_EQ(out_of_range.load(), 0) << threads;
    EXPECT_EQ(clashes.load(), 0) << threads;
    for (const std::atomic<int>& count : runs) ASSERT_EQ(count.load(), 1) << threads;
    EXPECT_FALSE(ThreadPool::in_task());
  }
}

TEST(ThreadPool, SharedPoolIsOnePerThreadCount) {
  EXPECT_EQ(&ThreadPool::shared(2), &ThreadPool::shared(2));
  EXPECT_EQ(ThreadPool::shared(3).threads(), 3);
  EXPECT_GE(ThreadPool::shared(0).threads(), 1);
}

}  // namespace
}  // namespace deltainfer
