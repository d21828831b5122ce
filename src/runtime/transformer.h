#pragma once
// Transformer: one Llama-family decoder and the KV pages of every sequence it serves, run by a
// backend (backend/cpu, backend/cuda). forward(BatchPlan) is the one way to run the model: a batch
// is any mix of prefill chunks and decode steps of different sequences, each with its own
// attention method. Single-sequence use (the CLI's generate, eval, bench) is a batch of one on the
// default sequence, through the non-virtual helpers below.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>

#include <nlohmann/json.hpp>

#include "attention/attention_config.h"
#include "core/kv_page.h"
#include "model/model_config.h"
#include "runtime/batch_plan.h"
#include "runtime/kv_sequences.h"

namespace deltainfer::runtime {

// What a backend is built with (parsed and validated at the edge).
struct BackendOptions {
  int64_t capacity = 0;        // most positions one sequence may hold
  int64_t kv_pages = 0;        // pages in the shared pool; 0: max_batch sequences of `capacity`
  int max_batch = 1;           // most sequences in one forward pass (sizes the GPU's decode workspaces)
  int64_t prefill_chunk = 512; // most tokens of one forward pass (bounds activation memory)
  int threads = 0;             // CPU threads; 0: all
  KvDtype kv_dtype = KvDtype::Bf16;  // the CUDA pools' element type; the CPU backend takes only bf16 (its pool is f32)
  attention::AttentionConfig attention;  // the default sequence's method
  int tensor_parallel = 1;     // GPUs one model is split over (CUDA backend; --tensor-parallel)
};

// Pages of the shared KV pool `options` asks for: kv_pages, or max_batch sequences of capacity.
inline int64_t requested_pool_pages(const BackendOptions& options) {
  return options.kv_pages > 0 ? options.kv_pages
                              : pages_for_positions(options.capacity) * (options.max_batch > 1 ? options.max_batch : 1);
}

class Transformer {
 public:
  virtual ~Transformer() = default;

  virtual const model::ModelConfig& config() const = 0;
  // Most positions one sequence may hold.
  virtual int64_t capacity() const = 0;
  // Most tokens (rows) one forward pass takes, summed over its entries.
  virtual int64_t max_batch_tokens() const = 0;
  // Tokens per prompt chunk of the single-sequence forward() (a multiple of Δ's γ where the
  // backend needs chunks to start at one); at most max_batch_tokens().
  virtual int64_t prefill_chunk() const { return max_batch_tokens(); }

  // A new, empty sequence attended under `method` (validated against the model; InputError when
  // this backend cannot run it).
  virtual SequenceId open_sequence(const attention::AttentionConfig& method) = 0;
  // Frees the sequence's pages and state.
  virtual void close_sequence(SequenceId id) = 0;
  virtual int64_t sequence_length(SequenceId id) const = 0;
  // Forgets every position >= length of the sequence (0 starts it anew).
  virtual void truncate_sequence(SequenceId id, int64_t length) = 0;
  // The sequence decodes under `method` from its next step on, as a sequence opened with `method`
  // would after the same positions: per-sequence decode state (DELTA's selection, Quest's key
  // bounds) starts afresh. InputError when the method is invalid here, or when the sequence holds
  // positions and `method` prefills otherwise (runtime::same_prefill). Backends that cannot
  // change a method throw InputError.
  virtual void set_sequence_method(SequenceId id, const attention::AttentionConfig& method);
  virtual KvUsage kv_usage() const = 0;

  // Runs the batch: checks it and gets every page it needs first (InputError, nothing run, when
  // it does not fit), then appends each entry's keys and values and writes the logits asked for.
  virtual void forward(const BatchPlan& plan) = 0;

  // ---- single sequence: the default sequence, opened with the backend's method ----
  virtual SequenceId default_sequence() const = 0;
  int64_t cached_tokens() const { return sequence_length(default_sequence()); }
  void truncate(int64_t length) { truncate_sequence(default_sequence(), length); }
  // Runs `n` tokens after the default sequence's cached positions, in chunks of prefill_chunk(). A call of one token after a prompt is a decode step; any other call is a
  // prefill. Writes vocab_size logits for the last token, or for every token (n rows); `which`
  // is None, LastToken or AllTokens (TokenNlls goes through forward_token_nlls).
  void forward(const int32_t* tokens, int64_t n, LogitsFor which, float* logits);
  // The same feeding, asking for LogitsFor::TokenNlls: nlls[i] = −log p(targets[i] | the sequence
  // up to tokens[i]) for i in [0, n), NaN where targets[i] is kNoTarget; no logits leave the backend.
  void forward_token_nlls(const int32_t* tokens, int64_t n, const int32_t* targets, double* nlls);

  // Backends that choose the next token on their device (no logits copied to the host) say so
  // here and implement forward_and_sample on the default sequence: forward() of the tokens, then
  // the token that follows them under `sampling`. The others throw from it.
  virtual bool samples_on_device() const { return false; }
  virtual int32_t forward_and_sample(const int32_t* tokens, int64_t n, const DeviceSampling& sampling);

  // The default sequence's per-layer attention fidelity (--fidelity), as attention::FidelityReport's
  // JSON; nullopt where this backend does not record it for that sequence's method.
  virtual std::optional<nlohmann::json> attention_fidelity() { return std::nullopt; }

  // Called after each chunk of a prompt longer than one chunk in forward() / forward_and_sample()
  // with the prompt's tokens done so far and its length, once the chunk has run (a forward pass
  // ends synchronized): how generate and bench show a long prefill's progress. Unset by default.
  using PrefillProgress = std::function<void(int64_t done, int64_t total)>;
  void set_prefill_progress(PrefillProgress observer) { prefill_progress_ = std::move(observer); }

 protected:
  void report_prefill_progress(int64_t done, int64_t total) const {
    if (prefill_progress_ && total > prefill_chunk()) prefill_progress_(done, total);
  }

 private:
  // Feeds n tokens to the default sequence in chunks (the feeding forward() documents);
  // `outputs(entry, start, last_chunk)` sets what each chunk's entry hands back.
  void forward_in_chunks(const int32_t* tokens, int64_t n,
                         const std::function<void(BatchEntry&, int64_t start, bool last_chunk)>& outputs);

  PrefillProgress prefill_progress_;
};

}  // namespace deltainfer::runtime
