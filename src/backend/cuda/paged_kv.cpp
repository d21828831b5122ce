#include "backend/cuda/paged_kv.h"

#include "core/error.h"

namespace deltainfer::cuda {
namespace {

void require_pointer(const char* what, const void* pointer, const char* field) {
  if (pointer == nullptr) throw_input_error("{}: paged KV field '{}' is null", what, field);
}

void require_positive(const char* what, int value, const char* field) {
  if (value < 1) throw_input_error("{}: paged KV field '{}' is {}; need >= 1", what, field, value);
}

}  // namespace

void validate_paged_kv(const char* what, const PagedKv& kv, PagedKvReads reads) {
  require_pointer(what, kv.k_pool, "k_pool");
  if (reads.values) require_pointer(what, kv.v_pool, "v_pool");
  if (kv.dtype == KvDtype::Fp8E4m3) {
    // A code means nothing without its page's scale: FP8 pools always travel with them.
    require_pointer(what, kv.k_scales, "k_scales");
    if (reads.values) require_pointer(what, kv.v_scales, "v_scales");
  }
  require_pointer(what, kv.page_table, "page_table");
  if (reads.lengths) require_pointer(what, kv.kv_lens, "kv_lens");
  if (kv.num_pages < 0) throw_input_error("{}: paged KV field 'num_pages' is {}; need >= 0", what, kv.num_pages);
  require_positive(what, kv.page_table_stride, "page_table_stride");
  require_positive(what, kv.batch, "batch");
  require_positive(what, kv.n_kv_heads, "n_kv_heads");
  if (kv.head_dim < 16 || kv.head_dim % 16 != 0) {
    throw_input_error("{}: paged KV field 'head_dim' is {}; need a positive multiple of 16", what, kv.head_dim);
  }
  if (kv.max_kv_len < 0) throw_input_error("{}: paged KV field 'max_kv_len' is {}; need >= 0", what, kv.max_kv_len);
  if (static_cast<int64_t>(kv.page_table_stride) * kKvPageSize < kv.max_kv_len) {
    throw_input_error("{}: paged KV field 'page_table_stride': rows of {} pages cannot hold max_kv_len {}", what,
                      kv.page_table_stride, kv.max_kv_len);
  }
}

PagedKv sequence_kv(const PagedKv& kv, int row, int kv_len) {
  PagedKv one = kv;
  one.page_table = kv.page_table + static_cast<int64_t>(row) * kv.page_table_stride;
  one.kv_lens = nullptr;
  one.batch = 1;
  one.max_kv_len = kv_len;
  return one;
}

}  // namespace deltainfer::cuda
