#include "backend/cpu/quant/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <vector>

namespace deltainfer::backend::cpu::quant {
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

TEST(ThreadPool, SharedPoolIsOnePerThreadCount) {
  EXPECT_EQ(&ThreadPool::shared(2), &ThreadPool::shared(2));
  EXPECT_EQ(ThreadPool::shared(3).threads(), 3);
  EXPECT_GE(ThreadPool::shared(0).threads(), 1);
}

}  // namespace
}  // namespace deltainfer::backend::cpu::quant
