#pragma once
// What a prefill method does in CpuAttention: the key set of each head's block of query rows in a
// prompt chunk (Δ correction and the dense tail are applied around it, for any method). One object
// per CpuAttention; a method builds it from its registry row (method_registry.h).
#include <cstdint>
#include <functional>
#include <vector>

#include "attention/exact_kernel.h"
#include "attention/key_sets.h"
#include "attention/kv_view.h"

namespace deltainfer::attention {

// Rows first_pos..first_pos+n_tokens-1 of a prompt, q: [n_tokens][n_heads][head_dim]; kv holds
// positions 0..first_pos+n_tokens-1.
struct PrefillChunk {
  const float* q = nullptr;
  int64_t n_tokens = 0;
  int64_t first_pos = 0;
  const KvView& kv;
};

// The CPU attention's threads and their scratch, for a policy that computes over the chunk first.
struct CpuWorkers {
  int threads = 1;
  std::vector<KernelScratch>& scratch;  // one per thread
};

class CpuPrefillPolicy {
 public:
  // The keys of head `head`'s rows [i0, i1) (one query block).
  using KeysFor = std::function<KeySet(int head, int64_t i0, int64_t i1)>;

  virtual ~CpuPrefillPolicy() = default;

  // The key sets of the chunk's rows; valid while the chunk is.
  virtual KeysFor keys(const PrefillChunk& chunk, const CpuWorkers& workers) = 0;

  // Rows per query block, counted from the chunk's first row: where the sets depend on the block
  // (vertical-slash: the GPU kernel's), otherwise only the work split.
  virtual int64_t query_block_rows() const = 0;
};

}  // namespace deltainfer::attention
