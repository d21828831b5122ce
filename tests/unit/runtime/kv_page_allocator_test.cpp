#include "runtime/kv_page_allocator.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <set>

#include "core/error.h"

namespace deltainfer::runtime {
namespace {

TEST(KvPageAllocator, HandsOutEveryPageOnceThenRefuses) {
  KvPageAllocator allocator(5);
  std::vector<int32_t> pages;
  ASSERT_TRUE(allocator.allocate(3, pages));
  ASSERT_TRUE(allocator.allocate(2, pages));
  EXPECT_EQ(std::set<int32_t>(pages.begin(), pages.end()).size(), 5u);
  EXPECT_EQ(allocator.free_pages(), 0);
  EXPECT_FALSE(allocator.allocate(1, pages));
  EXPECT_EQ(pages.size(), 5u) << "a refused allocation leaves the list untouched";
}

TEST(KvPageAllocator, AllOrNothing) {
  KvPageAllocator allocator(4);
  std::vector<int32_t> pages;
  ASSERT_TRUE(allocator.allocate(3, pages));
  std::vector<int32_t> more;
  EXPECT_FALSE(allocator.allocate(2, more));
  EXPECT_TRUE(more.empty());
  EXPECT_EQ(allocator.free_pages(), 1);
}

TEST(KvPageAllocator, SharedPageIsFreedByItsLastHolder) {
  KvPageAllocator allocator(2);
  std::vector<int32_t> pages;
  ASSERT_TRUE(allocator.allocate(1, pages));
  allocator.retain(pages[0]);
  EXPECT_EQ(allocator.ref_count(pages[0]), 2);
  allocator.release(pages[0]);
  EXPECT_EQ(allocator.free_pages(), 1);
  allocator.release(pages[0]);
  EXPECT_EQ(allocator.free_pages(), 2);
  EXPECT_THROW(allocator.release(pages[0]), Error) << "a double free is a bug, not silent";
  EXPECT_THROW(allocator.retain(pages[0]), Error);
  EXPECT_THROW(allocator.release(7), Error);
}

TEST(KvPageAllocator, RandomAllocateRetainReleaseNeverLeaks) {
  std::mt19937 rng(std::random_device{}());
  KvPageAllocator allocator(64);
  std::vector<int32_t> held;  // one entry per reference
  for (int event = 0; event < 20000; ++event) {
    const int kind = static_cast<int>(rng() % 3);
    if (kind == 0) {
      const int32_t count = static_cast<int32_t>(rng() % 6);
      const int32_t free_before = allocator.free_pages();
      EXPECT_EQ(allocator.allocate(count, held), count <= free_before);
    } else if (kind == 1 && !held.empty()) {
      const int32_t page = held[rng() % held.size()];
      allocator.retain(page);
      held.push_back(page);
    } else if (!held.empty()) {
      const size_t at = rng() % held.size();
      allocator.release(held[at]);
      held.erase(held.begin() + static_cast<long>(at));
    }
    const std::set<int32_t> distinct(held.begin(), held.end());
    ASSERT_EQ(allocator.used_pages(), static_cast<int32_t>(distinct.size()));
  }
  for (int32_t page : held) allocator.release(page);
  EXPECT_EQ(allocator.free_pages(), 64);
}

}  // namespace
}  // namespace deltainfer::runtime
