#pragma once
// Fidelity instrumentation (off by default): per layer and phase, the keys each query head
// attended, the cosine similarity of the policy's output against dense attention on the same
// inputs, and in decode the share of the dense attention mass that the attended set captures.
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace deltainfer::attention {

enum class Phase { Prefill, Decode };

struct LayerFidelity {
  int64_t calls = 0;
  int64_t query_heads = 0;       // (query row, head) pairs seen
  int64_t attended = 0;          // (query row, head, key) triples the policy attended
  int64_t dense_attended = 0;    // ... that dense causal attention would attend
  double cosine_sum = 0;
  double cosine_min = 1;
  double recall_sum = 0;         // decode only
  double recall_min = 1;
  int64_t recall_count = 0;

  void add_cosine(double cosine);
  void add_recall(double recall);
};

class FidelityReport {
 public:
  FidelityReport(int n_layers, std::string policy);

  LayerFidelity& at(Phase phase, int layer);
  const LayerFidelity& at(Phase phase, int layer) const;
  int n_layers() const { return static_cast<int>(prefill_.size()); }
  void clear();

  // {"policy": ..., "prefill": [{layer, calls, query_heads, attended_per_query_head,
  //  dense_per_query_head, density, cosine_mean, cosine_min}], "decode": [... recall_mean, recall_min]}
  nlohmann::json to_json() const;

 private:
  std::string policy_;
  std::vector<LayerFidelity> prefill_, decode_;
};

// Cosine similarity of two vectors of length n (1 when both are zero).
double cosine_similarity(const float* a, const float* b, int64_t n);

}  // namespace deltainfer::attention
