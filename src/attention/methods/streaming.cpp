// StreamingLLM decode (METHODS.md): every layer attends the attention sink and the recent window.
#include <fmt/format.h>

#include <memory>

#include "attention/method_registry.h"

namespace deltainfer::attention::methods {
namespace {

class StreamingPolicy final : public CpuDecodePolicy {
 public:
  StreamingPolicy(const AttentionConfig& config, const HeadShape& shape)
      : sink_(config.sink), window_(config.window), shape_(shape) {}
  std::vector<KeySet> sparse_keys(const DecodeQuery& query) override {
    return std::vector<KeySet>(static_cast<size_t>(shape_.n_heads),
                               sliding_keys(sink_, window_, query.pos, query.pos + 1));
  }

 private:
  int64_t sink_, window_;
  HeadShape shape_;
};

}  // namespace

DecodeMethodInfo streaming() {
  DecodeMethodInfo m;
  m.description = "StreamingLLM: attention sink + recent window in every layer";
  m.parameters = "--sink, --window";
  m.validate = [](const AttentionConfig&) {};
  m.describe = [](const AttentionConfig& c) { return fmt::format(" window={} sink={}", c.window, c.sink); };
  m.layer_roles = [](const DecodeConfig&, int n_layers) {
    return std::vector<LayerRole>(static_cast<size_t>(n_layers), LayerRole::Sparse);
  };
  m.sparse_tokens = [](const AttentionConfig& c) { return c.sink + c.window; };
  m.eval_prefill = PrefillKind::Sliding;
  m.cpu_policy = [](const AttentionConfig& config, const HeadShape& shape) -> std::unique_ptr<CpuDecodePolicy> {
    return std::make_unique<StreamingPolicy>(config, shape);
  };
  return m;
}

}  // namespace deltainfer::attention::methods
