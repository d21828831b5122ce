#pragma once
// The CPU KV cache of one layer as the engine lays it out, and the head shape of the model.
#include <cstdint>

namespace deltainfer::attention {

// K and V: f32 [n_kv_heads][capacity][head_dim], keys already RoPE-rotated; positions
// 0..length-1 are valid.
struct KvView {
  const float* k = nullptr;
  const float* v = nullptr;
  int64_t capacity = 0;
  int64_t length = 0;
};

struct HeadShape {
  int n_heads = 0;
  int n_kv_heads = 0;
  int head_dim = 0;

  int group_size() const { return n_heads / n_kv_heads; }
  int kv_head_of(int head) const { return head / group_size(); }
  int64_t q_row_stride() const { return int64_t{n_heads} * head_dim; }  // q/out: [token][head][dim]
};

}  // namespace deltainfer::attention
