#include "attention/methods/delta_selection.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "attention/methods/page_budget.h"
#include "attention/token_selection.h"
#include "core/error.h"

namespace deltainfer::attention::methods {
namespace {

class DeltaSelectionPolicy final : public CpuDecodePolicy {
 public:
  DeltaSelectionPolicy(const DecodeConfig& decode, const HeadShape& shape, int64_t recency)
      : decode_(decode), shape_(shape), recency_(recency) {}

  std::vector<KeySet> sparse_keys(const DecodeQuery& query) override {
    if (selection_pos_ != query.pos) {
      throw_error("attention decode: sparse layer {} at position {} runs before any Δ-layer of this step",
                  query.layer, query.pos);
    }
    return std::vector<KeySet>(static_cast<size_t>(shape_.n_heads), KeySet{selection_, KeyRule{}});
  }

  void select(const DecodeQuery& query, const float* probabilities) override {
    const int64_t length = query.pos + 1;
    const std::vector<double> scores =
        unified_token_scores(probabilities, shape_.n_heads, length, decode_.aggregation);
    selection_ = select_pages(scores, length, {decode_.budget, decode_.page, recency_, /*keep_sink_page=*/true, false});
    selection_pos_ = query.pos;
  }

  const std::vector<KeyRange>& selection() const override { return selection_; }

  void reset() override {
    selection_.clear();
    selection_pos_ = -1;
  }

 private:
  DecodeConfig decode_;
  HeadShape shape_;
  int64_t recency_;
  std::vector<KeyRange> selection_;
  int64_t selection_pos_ = -1;
};

}  // namespace

std::vector<LayerRole> delta_layer_roles(const DecodeConfig& decode, int n_layers) {
  std::vector<LayerRole> roles(static_cast<size_t>(n_layers), LayerRole::Full);
  const std::vector<int> selecting = resolved_delta_layers(decode, n_layers);
  if (selecting.empty()) return roles;
  for (int layer = selecting.front(); layer < n_layers; ++layer) roles[static_cast<size_t>(layer)] = LayerRole::Sparse;
  for (int layer : selecting) roles[static_cast<size_t>(layer)] = LayerRole::DeltaSelect;
  return roles;
}

std::string describe_delta_selection(const DecodeConfig& d) {
  return describe_budget(d) +
         fmt::format(" delta-layers={} heads={}",
                     d.delta_layers.empty() ? std::string("default") : fmt::format("{}", fmt::join(d.delta_layers, ",")),
                     head_aggregation_name(d.aggregation));
}

std::unique_ptr<CpuDecodePolicy> delta_selection_policy(const AttentionConfig& config, const HeadShape& shape,
                                                        int64_t recency) {
  return std::make_unique<DeltaSelectionPolicy>(config.decode, shape, recency);
}

}  // namespace deltainfer::attention::methods
