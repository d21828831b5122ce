// Dense prefill: every row attends every key at or before it.
#include <memory>

#include "attention/method_registry.h"

namespace deltainfer::attention::methods {
namespace {

class DensePrefill final : public CpuPrefillPolicy {
 public:
  explicit DensePrefill(int64_t block) : block_(block) {}
  KeysFor keys(const PrefillChunk&, const CpuWorkers&) override {
    return [](int, int64_t, int64_t i1) { return dense_keys(i1); };
  }
  int64_t query_block_rows() const override { return block_; }

 private:
  int64_t block_;
};

}  // namespace

PrefillMethodInfo dense_prefill() {
  PrefillMethodInfo m;
  m.description = "exact causal attention";
  m.describe = [](const AttentionConfig&) { return std::string(); };
  m.kept_keys = [](const AttentionConfig&) -> std::optional<int64_t> { return std::nullopt; };
  m.cpu_policy = [](const AttentionConfig& config, const HeadShape&) -> std::unique_ptr<CpuPrefillPolicy> {
    return std::make_unique<DensePrefill>(config.prefill.block);
  };
  return m;
}

}  // namespace deltainfer::attention::methods
