// Sliding-window prefill: each row attends the attention sink and the window before it.
#include <fmt/format.h>

#include <memory>

#include "attention/method_registry.h"

namespace deltainfer::attention::methods {
namespace {

class SlidingPrefill final : public CpuPrefillPolicy {
 public:
  explicit SlidingPrefill(const AttentionConfig& config)
      : sink_(config.sink), window_(config.window), block_(config.prefill.block) {}
  KeysFor keys(const PrefillChunk&, const CpuWorkers&) override {
    return [sink = sink_, window = window_](int, int64_t i0, int64_t i1) { return sliding_keys(sink, window, i0, i1); };
  }
  int64_t query_block_rows() const override { return block_; }

 private:
  int64_t sink_, window_, block_;
};

}  // namespace

PrefillMethodInfo sliding_prefill() {
  PrefillMethodInfo m;
  m.description = "sliding window + attention sink; with +delta, Δ correction from dense rows";
  m.parameters = "--window, --sink; +delta: --gamma, --dense-tail, --delta-variant";
  m.describe = [](const AttentionConfig& c) { return fmt::format(" window={} sink={}", c.window, c.sink); };
  m.kept_keys = [](const AttentionConfig& c) -> std::optional<int64_t> { return c.sink + c.window; };
  m.cpu_policy = [](const AttentionConfig& config, const HeadShape&) -> std::unique_ptr<CpuPrefillPolicy> {
    return std::make_unique<SlidingPrefill>(config);
  };
  return m;
}

}  // namespace deltainfer::attention::methods
