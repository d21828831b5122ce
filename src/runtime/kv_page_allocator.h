#pragma once
// KvPageAllocator: the bookkeeping of one pool of KV pages shared by every sequence of a backend.
// A page holds kKvPageTokens consecutive positions of one sequence (all layers, all KV heads: the
// backends index their per-layer pools by the same page id). Pages come from a free list and carry
// a reference count, so that a prefix cache can later share a page between sequences; a page
// returns to the free list when its last holder releases it. No memory is touched here: the
// backends own the storage, sized up front from the page count.
#include <cstdint>
#include <vector>

#include "core/kv_page.h"

namespace deltainfer::runtime {

class KvPageAllocator {
 public:
  explicit KvPageAllocator(int32_t total_pages);

  int32_t total_pages() const { return static_cast<int32_t>(ref_counts_.size()); }
  int32_t free_pages() const { return static_cast<int32_t>(free_list_.size()); }
  int32_t used_pages() const { return total_pages() - free_pages(); }

  // Appends `count` fresh pages (reference count 1) to `pages`, all or none: false and `pages`
  // untouched when fewer than `count` are free.
  bool allocate(int32_t count, std::vector<int32_t>& pages);
  // Another holder of an allocated page (throws Error for a free or unknown page).
  void retain(int32_t page);
  // Drops one reference; the page is free again at zero (throws Error for a free or unknown page).
  void release(int32_t page);
  int32_t ref_count(int32_t page) const;

 private:
  void check_allocated(int32_t page, const char* operation) const;

  std::vector<int32_t> ref_counts_;
  std::vector<int32_t> free_list_;  // a stack: the most recently freed page is reused first
};

}  // namespace deltainfer::runtime
