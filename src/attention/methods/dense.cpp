// Dense decode: every layer attends the whole cache (the reference the sparse methods are measured
// against).
#include <memory>

#include "attention/method_registry.h"

namespace deltainfer::attention::methods {
namespace {

// Has no Sparse layer to serve; asked anyway, it attends densely.
class DensePolicy final : public CpuDecodePolicy {
 public:
  explicit DensePolicy(const HeadShape& shape) : shape_(shape) {}
  std::vector<KeySet> sparse_keys(const DecodeQuery& query) override {
    return std::vector<KeySet>(static_cast<size_t>(shape_.n_heads), dense_keys(query.pos + 1));
  }

 private:
  HeadShape shape_;
};

}  // namespace

DecodeMethodInfo dense() {
  DecodeMethodInfo m;
  m.description = "exact attention over the whole cache";
  m.validate = [](const AttentionConfig&) {};
  m.describe = [](const AttentionConfig&) { return std::string(); };
  m.layer_roles = [](const DecodeConfig&, int n_layers) {
    return std::vector<LayerRole>(static_cast<size_t>(n_layers), LayerRole::Full);
  };
  m.sparse_tokens = [](const AttentionConfig&) { return int64_t{0}; };
  m.cpu_policy = [](const AttentionConfig&, const HeadShape& shape) -> std::unique_ptr<CpuDecodePolicy> {
    return std::make_unique<DensePolicy>(shape);
  };
  return m;
}

}  // namespace deltainfer::attention::methods
