#pragma once
// The one KV page size of the engine: a page holds this many consecutive positions of one
// sequence, for every KV head of a layer. The CPU and CUDA pools, their page tables and the
// runtime's page allocator all use it.
#include <cstdint>

namespace deltainfer {

inline constexpr int64_t kKvPageTokens = 64;

inline int64_t pages_for_positions(int64_t positions) { return (positions + kKvPageTokens - 1) / kKvPageTokens; }

}  // namespace deltainfer
