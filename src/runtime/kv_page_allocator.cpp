#include "runtime/kv_page_allocator.h"

#include "core/error.h"

namespace deltainfer::runtime {

KvPageAllocator::KvPageAllocator(int32_t total_pages) {
  if (total_pages < 0) throw_error("a KV page pool cannot have {} pages", total_pages);
  ref_counts_.assign(static_cast<size_t>(total_pages), 0);
  free_list_.reserve(static_cast<size_t>(total_pages));
  for (int32_t page = total_pages - 1; page >= 0; --page) free_list_.push_back(page);  // page 0 comes first
}

bool KvPageAllocator::allocate(int32_t count, std::vector<int32_t>& pages) {
  if (count < 0) throw_error("cannot allocate {} KV pages", count);
  if (count > free_pages()) return false;
  for (int32_t i = 0; i < count; ++i) {
    const int32_t page = free_list_.back();
    free_list_.pop_back();
    ref_counts_[static_cast<size_t>(page)] = 1;
    pages.push_back(page);
  }
  return true;
}

void KvPageAllocator::check_allocated(int32_t page, const char* operation) const {
  if (page < 0 || page >= total_pages() || ref_counts_[static_cast<size_t>(page)] == 0) {
    throw_error("KV page {}: {} of a page that is not allocated (pool of {})", page, operation, total_pages());
  }
}

void KvPageAllocator::retain(int32_t page) {
  check_allocated(page, "retain");
  ++ref_counts_[static_cast<size_t>(page)];
}

void KvPageAllocator::release(int32_t page) {
  check_allocated(page, "release");
  if (--ref_counts_[static_cast<size_t>(page)] == 0) free_list_.push_back(page);
}

int32_t KvPageAllocator::ref_count(int32_t page) const {
  if (page < 0 || page >= total_pages()) throw_error("KV page {} is outside the pool of {}", page, total_pages());
  return ref_counts_[static_cast<size_t>(page)];
}

}  // namespace deltainfer::runtime
