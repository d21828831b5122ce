#pragma once
// The server's Prometheus metrics (GET /metrics, text format 0.0.4): requests by HTTP status,
// prompt and generated tokens, and histograms of time to first token and time per output token;
// the scheduler's gauges (queue, running sequences, KV pages) are read when the text is written.
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "engine/request.h"
#include "engine/scheduler.h"

namespace deltainfer::server {

class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void observe(double value);
  // Lines of `name`_bucket{le=...}, _sum and _count.
  std::string render(const std::string& name) const;

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // per bound, not cumulative; one more for +Inf
  double sum_ = 0.0;
  uint64_t count_ = 0;
};

class Metrics {
 public:
  Metrics();
  void count_response(int status);
  // A completion the scheduler finished (any reason).
  void count_completion(const engine::CompletionOutcome& outcome);
  std::string render(const engine::SchedulerStats& stats) const;

 private:
  mutable std::mutex mutex_;
  std::map<int, uint64_t> responses_;
  std::map<std::string, uint64_t> finishes_;
  uint64_t prompt_tokens_ = 0;
  uint64_t generated_tokens_ = 0;
  Histogram time_to_first_token_;
  Histogram time_per_output_token_;
};

}  // namespace deltainfer::server
