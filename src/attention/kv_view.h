#pragma once
// The KV cache of one layer of one sequence as the CPU kernels read it, and the head shape of the
// model.
#include <algorithm>
#include <cstdint>

#include "core/kv_page.h"

namespace deltainfer::attention {

// K and V pools of one layer: f32 [pool pages][n_kv_heads][kKvPageTokens][head_dim], keys already
// RoPE-rotated. The sequence's logical page p (positions p*kKvPageTokens..) is pool page
// page_table[p]; positions 0..length-1 are valid. Within a page a head's positions are
// consecutive rows of head_dim floats, so a run of keys that does not cross a page boundary is one
// row-major matrix.
struct KvView {
  const float* k_pool = nullptr;
  const float* v_pool = nullptr;
  const int32_t* page_table = nullptr;
  int n_kv_heads = 0;
  int head_dim = 0;
  int64_t length = 0;

  int64_t offset(int kv_head, int64_t pos) const {
    const int64_t page = page_table[pos / kKvPageTokens];
    return ((page * n_kv_heads + kv_head) * kKvPageTokens + pos % kKvPageTokens) * head_dim;
  }
  const float* key(int kv_head, int64_t pos) const { return k_pool + offset(kv_head, pos); }
  const float* value(int kv_head, int64_t pos) const { return v_pool + offset(kv_head, pos); }
};

// One past the last position of the run that starts at `pos`, stays inside pos's page and ends
// at or before `end`.
inline int64_t page_run_end(int64_t pos, int64_t end) {
  return std::min(end, (pos / kKvPageTokens + 1) * kKvPageTokens);
}

struct HeadShape {
  int n_heads = 0;
  int n_kv_heads = 0;
  int head_dim = 0;

  int group_size() const { return n_heads / n_kv_heads; }
  int kv_head_of(int head) const { return head / group_size(); }
  int64_t q_row_stride() const { return int64_t{n_heads} * head_dim; }  // q/out: [token][head][dim]
};

}  // namespace deltainfer::attention
