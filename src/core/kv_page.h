#pragma once
// The one KV page size of the engine: a page holds this many consecutive positions of one
// sequence, for every KV head of a layer. The CPU and CUDA pools, their page tables and the
// runtime's page allocator all use it.
//
// The CUDA pools keep a page's values in bf16 or, with --kv-dtype fp8, in e4m3 with one f32 scale
// per page and KV head for K and for V (core/kv_fp8_page.h states that format); the CPU pool is f32.
#include <cstdint>

namespace deltainfer {

inline constexpr int64_t kKvPageTokens = 64;

inline int64_t pages_for_positions(int64_t positions) { return (positions + kKvPageTokens - 1) / kKvPageTokens; }

// The element type of the CUDA KV pools (--kv-dtype).
enum class KvDtype { Bf16, Fp8E4m3 };

inline const char* kv_dtype_name(KvDtype dtype) { return dtype == KvDtype::Fp8E4m3 ? "fp8" : "bf16"; }

// Bytes of one pool page of one layer, for K or for V: its values and, in FP8, the f32 scale of
// each KV head.
inline int64_t kv_pool_page_bytes(KvDtype dtype, int n_kv_heads, int head_dim) {
  const int64_t values = kKvPageTokens * n_kv_heads * head_dim;
  return dtype == KvDtype::Fp8E4m3 ? values + int64_t{4} * n_kv_heads : values * 2;
}

}  // namespace deltainfer
