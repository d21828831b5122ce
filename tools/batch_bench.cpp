#include "batch_bench.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <random>

#include "bench_costs.h"
#include "core/error.h"
#include "engine/sampler.h"

namespace deltainfer::cli {
namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// B sequences of one length, prefilled one after the other, then decoding together.
class DecodingBatch {
 public:
  DecodingBatch(runtime::Transformer& model, const attention::AttentionConfig& method, int batch, int64_t prompt,
                std::mt19937& rng)
      : model_(model), vocab_(model.config().vocab_size), next_(static_cast<size_t>(batch)),
        chosen_(static_cast<size_t>(batch)), logits_(static_cast<size_t>(batch) * static_cast<size_t>(vocab_)) {
    std::uniform_int_distribution<int32_t> token(0, vocab_ - 1);
    std::vector<int32_t> tokens(static_cast<size_t>(prompt));
    for (int s = 0; s < batch; ++s) {
      for (int32_t& t : tokens) t = token(rng);
      ids_.push_back(model.open_sequence(method));
      prefill(ids_.back(), tokens, model.prefill_chunk());
      next_[static_cast<size_t>(s)] = token(rng);
    }
  }
  ~DecodingBatch() {
    for (runtime::SequenceId id : ids_) model_.close_sequence(id);
  }
  DecodingBatch(const DecodingBatch&) = delete;
  DecodingBatch& operator=(const DecodingBatch&) = delete;

  // The decode entries of one step: greedy on the device where the backend can, else logits.
  void add_step(runtime::BatchPlan& plan) {
    for (size_t s = 0; s < ids_.size(); ++s) {
      runtime::BatchEntry entry = runtime::decode_entry(ids_[s], &next_[s]);
      if (model_.samples_on_device()) {
        entry.sampling = &greedy_;
        entry.sampled = &chosen_[s];
      } else {
        entry.logits = runtime::LogitsFor::LastToken;
        entry.logits_out = logits_.data() + s * static_cast<size_t>(vocab_);
      }
      plan.entries.push_back(entry);
    }
  }
  void after_step() {
    for (size_t s = 0; s < ids_.size(); ++s) {
      next_[s] = model_.samples_on_device() ? chosen_[s]
                                            : engine::argmax(logits_.data() + s * static_cast<size_t>(vocab_), vocab_);
    }
  }

  static void prefill(runtime::Transformer& model, runtime::SequenceId id, const std::vector<int32_t>& tokens,
                      int64_t chunk) {
    const int64_t n = static_cast<int64_t>(tokens.size());
    for (int64_t start = 0; start < n; start += chunk) {
      model.forward(runtime::BatchPlan{{runtime::prefill_entry(id, tokens.data() + start, std::min(chunk, n - start), n)}});
    }
  }

 private:
  void prefill(runtime::SequenceId id, const std::vector<int32_t>& tokens, int64_t chunk) {
    prefill(model_, id, tokens, chunk);
  }

  runtime::Transformer& model_;
  int32_t vocab_;
  std::vector<runtime::SequenceId> ids_;
  std::vector<int32_t> next_, chosen_;
  std::vector<float> logits_;
  runtime::DeviceSampling greedy_;
};

// A sequence that feeds one prefill chunk into every step (and starts over when it would overflow).
class PrefillStream {
 public:
  PrefillStream(runtime::Transformer& model, const attention::AttentionConfig& method, int64_t chunk, std::mt19937& rng)
      : model_(model), id_(model.open_sequence(method)), tokens_(static_cast<size_t>(chunk)) {
    std::uniform_int_distribution<int32_t> token(0, model.config().vocab_size - 1);
    for (int32_t& t : tokens_) t = token(rng);
  }
  ~PrefillStream() { model_.close_sequence(id_); }
  PrefillStream(const PrefillStream&) = delete;
  PrefillStream& operator=(const PrefillStream&) = delete;

  void add_step(runtime::BatchPlan& plan) {
    const int64_t n = static_cast<int64_t>(tokens_.size());
    if (model_.sequence_length(id_) + n > model_.capacity()) model_.truncate_sequence(id_, 0);
    plan.entries.push_back(runtime::prefill_entry(id_, tokens_.data(), n, model_.capacity()));
  }

 private:
  runtime::Transformer& model_;
  runtime::SequenceId id_;
  std::vector<int32_t> tokens_;
};

// Median seconds of `steps` forward passes of the batch (plus the prefill stream when given).
double median_step_seconds(runtime::Transformer& model, DecodingBatch& batch, PrefillStream* stream, int64_t steps) {
  std::vector<double> seconds;
  for (int64_t i = 0; i < steps; ++i) {
    runtime::BatchPlan plan;
    batch.add_step(plan);
    if (stream != nullptr) stream->add_step(plan);
    const auto start = std::chrono::steady_clock::now();
    model.forward(plan);
    seconds.push_back(seconds_since(start));
    batch.after_step();
  }
  std::sort(seconds.begin(), seconds.end());  // the first step of a shape captures its graph
  return seconds[seconds.size() / 2];
}

}  // namespace

int run_batch_bench(engine::Engine& engine, const attention::AttentionConfig& method, const BatchBenchOptions& o) {
  if (o.batch < 1) throw_input_error("--batch must be >= 1");
  if (o.mixed_chunk < 0) throw_input_error("--mixed-chunk must be >= 0");
  runtime::Transformer& model = engine.transformer();
  const ModelCosts costs = model_costs(model.config(), o.kv_dtype);
  std::mt19937 rng(1234);
  fmt::print("batched decode: {} sequences per step, {}, token chosen {}\n", o.batch, attention::describe(method),
             model.samples_on_device() ? "on the device (greedy)" : "on the host from the logits");
  fmt::print("| batch | context | step ms | tokens/s | floor ms | % of floor |{}\n|---|---|---|---|---|---|{}\n",
             o.mixed_chunk > 0 ? fmt::format(" step ms with a {}-token prefill chunk |", o.mixed_chunk) : "",
             o.mixed_chunk > 0 ? "---|" : "");
  for (int64_t length : o.lengths) {
    // Decode steps are timed once, and once more beside the prefill chunks when asked.
    const int64_t steps = o.decode_tokens * (o.mixed_chunk > 0 ? 2 : 1);
    const int64_t prompt = length - steps;
    if (prompt < 1) throw_input_error("context {} is not longer than the {} decode steps timed", length, steps);
    DecodingBatch batch(model, method, o.batch, prompt, rng);
    const double step_s = median_step_seconds(model, batch, nullptr, o.decode_tokens);
    const double floor_at_one_tbps = (costs.weight_bytes + o.batch * attended_kv_bytes(costs, method, length)) / 1e12;
    std::string mixed;
    if (o.mixed_chunk > 0) {
      PrefillStream stream(model, method, o.mixed_chunk, rng);
      mixed = fmt::format(" {:.3f} |", 1e3 * median_step_seconds(model, batch, &stream, o.decode_tokens));
    }
    const double floor_s = floor_at_one_tbps / o.peak_tbps;
    const bool known = o.peak_tbps > 0;
    fmt::print("| {} | {} | {:.3f} | {:.0f} | {} | {} |{}\n", o.batch, length, 1e3 * step_s, o.batch / step_s,
               known ? fmt::format("{:.3f}", 1e3 * floor_s) : "n/a",
               known ? fmt::format("{:.0f}%", 100.0 * floor_s / step_s) : "n/a", mixed);
    std::fflush(stdout);
  }
  fmt::print("floor = (bf16 weights + each sequence's attended {} KV bytes) / {:.3f} TB/s{}\n", kv_dtype_name(o.kv_dtype),
             o.peak_tbps, o.peak_tbps > 0 ? "" : " (n/a: no ceiling given, and none measured on the CPU)");
  return 0;
}

}  // namespace deltainfer::cli
