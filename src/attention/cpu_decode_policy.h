#pragma once
// What a decode method does in CpuAttention, for one sequence: the keys of its Sparse layers and
// what it keeps from its DeltaSelect layers' dense pass (LayerSchedule gives the roles; Full layers
// attend densely without asking). One object per CpuAttention, called for layers 0..L-1 of each
// step in order; a method builds it from its registry row (method_registry.h).
#include <cstdint>
#include <vector>

#include "attention/exact_kernel.h"
#include "attention/key_sets.h"
#include "attention/kv_view.h"

namespace deltainfer::attention {

// One decode token at one layer: its q ([n_heads][head_dim]) at `pos`; kv holds positions 0..pos.
struct DecodeQuery {
  int layer = 0;
  const float* q = nullptr;
  int64_t pos = 0;
  const KvView& kv;
};

class CpuDecodePolicy {
 public:
  virtual ~CpuDecodePolicy() = default;

  // A Sparse layer: the key set of each query head (n_heads entries).
  virtual std::vector<KeySet> sparse_keys(const DecodeQuery& query) = 0;

  // A DeltaSelect layer attended densely; probabilities: [n_heads][pos + 1] of that pass.
  virtual void select(const DecodeQuery& query, const float* probabilities) {
    (void)query;
    (void)probabilities;
  }

  // The keys the latest select() chose (empty for a method that selects nothing).
  virtual const std::vector<KeyRange>& selection() const { return no_selection_; }

  // A new sequence: forget what earlier steps selected.
  virtual void reset() {}

 private:
  std::vector<KeyRange> no_selection_;
};

}  // namespace deltainfer::attention
