// Quest decode (METHODS.md section 3): above --full-layers, each KV head attends the pages whose
// key bounds promise the largest scores (attention/quest.h), the page being written always kept.
#include <memory>

#include "attention/method_registry.h"
#include "attention/methods/page_budget.h"
#include "attention/quest.h"
#include "attention/token_selection.h"

namespace deltainfer::attention::methods {
namespace {

class QuestPolicy final : public CpuDecodePolicy {
 public:
  QuestPolicy(const DecodeConfig& decode, const HeadShape& shape) : decode_(decode), shape_(shape) {}

  std::vector<KeySet> sparse_keys(const DecodeQuery& query) override {
    std::vector<KeySet> keys(static_cast<size_t>(shape_.n_heads));
    const int group = shape_.group_size();
    for (int kv_head = 0; kv_head < shape_.n_kv_heads; ++kv_head) {
      const float* group_q = query.q + int64_t{kv_head} * group * shape_.head_dim;
      const std::vector<KeyRange> ranges =
          select_scored_pages(quest_page_scores(shape_, query.kv, kv_head, group_q, decode_.page), query.pos + 1,
                              {decode_.budget, decode_.page, 0, /*keep_sink_page=*/false, /*keep_last_page=*/true});
      for (int g = 0; g < group; ++g) keys[static_cast<size_t>(kv_head * group + g)] = KeySet{ranges, KeyRule{}};
    }
    return keys;
  }

 private:
  DecodeConfig decode_;
  HeadShape shape_;
};

}  // namespace

DecodeMethodInfo quest() {
  DecodeMethodInfo m;
  m.description = "Quest: per KV head, the pages whose key bounds promise the largest scores";
  m.parameters = "--budget, --page (16 on the GPU), --full-layers";
  m.validate = [](const AttentionConfig& c) { require_budget_pages(c.decode); };
  m.describe = [](const AttentionConfig& c) { return describe_budget(c.decode); };
  m.layer_roles = [](const DecodeConfig& d, int n_layers) {
    std::vector<LayerRole> roles(static_cast<size_t>(n_layers), LayerRole::Full);
    for (int layer = d.full_layers; layer < n_layers; ++layer) roles[static_cast<size_t>(layer)] = LayerRole::Sparse;
    return roles;
  };
  m.sparse_tokens = budget_tokens;
  m.cpu_policy = [](const AttentionConfig& config, const HeadShape& shape) -> std::unique_ptr<CpuDecodePolicy> {
    return std::make_unique<QuestPolicy>(config.decode, shape);
  };
  return m;
}

}  // namespace deltainfer::attention::methods
