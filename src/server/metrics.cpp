#include "server/metrics.h"

#include <fmt/format.h>

namespace deltainfer::server {

Histogram::Histogram(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::observe(double value) {
  size_t bucket = 0;
  while (bucket < bounds_.size() && value > bounds_[bucket]) ++bucket;
  ++counts_[bucket];
  sum_ += value;
  ++count_;
}

std::string Histogram::render(const std::string& name) const {
  std::string text;
  uint64_t cumulative = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cumulative += counts_[i];
    text += fmt::format("{}_bucket{{le=\"{}\"}} {}\n", name, bounds_[i], cumulative);
  }
  text += fmt::format("{}_bucket{{le=\"+Inf\"}} {}\n{}_sum {}\n{}_count {}\n", name, count_, name, sum_, name, count_);
  return text;
}

Metrics::Metrics()
    : time_to_first_token_({0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120}),
      time_per_output_token_({0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1}) {}

void Metrics::count_response(int status) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++responses_[status];
}

void Metrics::count_completion(const engine::CompletionOutcome& outcome) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++finishes_[engine::finish_reason_name(outcome.finish)];
  prompt_tokens_ += static_cast<uint64_t>(outcome.prompt_tokens);
  generated_tokens_ += outcome.tokens.size();
  if (outcome.first_token_seconds > 0) time_to_first_token_.observe(outcome.first_token_seconds);
  if (outcome.tokens.size() > 1) {
    time_per_output_token_.observe(outcome.decode_seconds / static_cast<double>(outcome.tokens.size() - 1));
  }
}

std::string Metrics::render(const engine::SchedulerStats& stats) const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::string text;
  const auto header = [&](const char* name, const char* type, const char* help) {
    text += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  };
  header("deltainfer_http_requests_total", "counter", "HTTP responses by status code");
  for (const auto& [status, count] : responses_) {
    text += fmt::format("deltainfer_http_requests_total{{status=\"{}\"}} {}\n", status, count);
  }
  header("deltainfer_completions_total", "counter", "Completions the scheduler finished, by finish reason");
  for (const auto& [reason, count] : finishes_) {
    text += fmt::format("deltainfer_completions_total{{reason=\"{}\"}} {}\n", reason, count);
  }
  header("deltainfer_prompt_tokens_total", "counter", "Prompt tokens of finished completions");
  text += fmt::format("deltainfer_prompt_tokens_total {}\n", prompt_tokens_);
  header("deltainfer_generation_tokens_total", "counter", "Tokens generated");
  text += fmt::format("deltainfer_generation_tokens_total {}\n", generated_tokens_);
  header("deltainfer_queue_length", "gauge", "Requests waiting for admission");
  text += fmt::format("deltainfer_queue_length {}\n", stats.queued);
  header("deltainfer_running_sequences", "gauge", "Sequences being prefilled or decoded");
  text += fmt::format("deltainfer_running_sequences {}\n", stats.running);
  header("deltainfer_kv_pages_used", "gauge", "KV cache pages in use");
  text += fmt::format("deltainfer_kv_pages_used {}\n", stats.kv.used_pages);
  header("deltainfer_kv_pages_free", "gauge", "KV cache pages free");
  text += fmt::format("deltainfer_kv_pages_free {}\n", stats.kv.total_pages - stats.kv.used_pages);
  header("deltainfer_kv_page_tokens", "gauge", "Positions per KV page");
  text += fmt::format("deltainfer_kv_page_tokens {}\n", stats.kv.page_tokens);
  header("deltainfer_forward_passes_total", "counter", "Forward passes (batches) run");
  text += fmt::format("deltainfer_forward_passes_total {}\n", stats.steps.passes);
  header("deltainfer_forward_pass_seconds_total", "counter", "Time of the forward passes");
  text += fmt::format("deltainfer_forward_pass_seconds_total {}\n", stats.steps.seconds);
  header("deltainfer_decode_passes_total", "counter", "Forward passes of decode steps only (no prompt chunk)");
  text += fmt::format("deltainfer_decode_passes_total {}\n", stats.steps.decode_passes);
  header("deltainfer_decode_pass_seconds_total", "counter", "Time of the forward passes of decode steps only");
  text += fmt::format("deltainfer_decode_pass_seconds_total {}\n", stats.steps.decode_seconds);
  header("deltainfer_time_to_first_token_seconds", "histogram", "From request to first generated token");
  text += time_to_first_token_.render("deltainfer_time_to_first_token_seconds");
  header("deltainfer_time_per_output_token_seconds", "histogram", "Mean time between generated tokens per request");
  text += time_per_output_token_.render("deltainfer_time_per_output_token_seconds");
  return text;
}

}  // namespace deltainfer::server
