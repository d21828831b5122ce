#include "attention/fidelity.h"

#include <algorithm>
#include <cmath>

namespace deltainfer::attention {
namespace {

double mean(double sum, int64_t count) { return count == 0 ? 0.0 : sum / static_cast<double>(count); }

nlohmann::json layer_json(int layer, const LayerFidelity& f, bool with_recall) {
  nlohmann::json row{{"layer", layer},
                     {"calls", f.calls},
                     {"query_heads", f.query_heads},
                     {"attended_per_query_head", mean(static_cast<double>(f.attended), f.query_heads)},
                     {"dense_per_query_head", mean(static_cast<double>(f.dense_attended), f.query_heads)},
                     {"density", f.dense_attended == 0 ? 0.0
                                                       : static_cast<double>(f.attended) / static_cast<double>(f.dense_attended)},
                     {"cosine_mean", mean(f.cosine_sum, f.query_heads)},
                     {"cosine_min", f.cosine_min}};
  if (with_recall) {
    row["recall_mean"] = mean(f.recall_sum, f.recall_count);
    row["recall_min"] = f.recall_min;
  }
  return row;
}

}  // namespace

void LayerFidelity::add_cosine(double cosine) {
  cosine_sum += cosine;
  cosine_min = std::min(cosine_min, cosine);
}

void LayerFidelity::add_recall(double recall) {
  recall_sum += recall;
  recall_min = std::min(recall_min, recall);
  ++recall_count;
}

FidelityReport::FidelityReport(int n_layers, std::string policy)
    : policy_(std::move(policy)), prefill_(static_cast<size_t>(n_layers)), decode_(static_cast<size_t>(n_layers)) {}

LayerFidelity& FidelityReport::at(Phase phase, int layer) {
  return (phase == Phase::Prefill ? prefill_ : decode_).at(static_cast<size_t>(layer));
}

const LayerFidelity& FidelityReport::at(Phase phase, int layer) const {
  return (phase == Phase::Prefill ? prefill_ : decode_).at(static_cast<size_t>(layer));
}

void FidelityReport::clear() {
  std::fill(prefill_.begin(), prefill_.end(), LayerFidelity{});
  std::fill(decode_.begin(), decode_.end(), LayerFidelity{});
}

nlohmann::json FidelityReport::to_json() const {
  nlohmann::json prefill = nlohmann::json::array(), decode = nlohmann::json::array();
  for (int layer = 0; layer < n_layers(); ++layer) {
    prefill.push_back(layer_json(layer, prefill_[static_cast<size_t>(layer)], false));
    decode.push_back(layer_json(layer, decode_[static_cast<size_t>(layer)], true));
  }
  return {{"policy", policy_}, {"prefill", prefill}, {"decode", decode}};
}

double cosine_similarity(const float* a, const float* b, int64_t n) {
  double dot = 0, aa = 0, bb = 0;
  for (int64_t i = 0; i < n; ++i) {
    dot += double{a[i]} * b[i];
    aa += double{a[i]} * a[i];
    bb += double{b[i]} * b[i];
  }
  if (aa == 0 && bb == 0) return 1.0;
  if (aa == 0 || bb == 0) return 0.0;
  return dot / std::sqrt(aa * bb);
}

}  // namespace deltainfer::attention
