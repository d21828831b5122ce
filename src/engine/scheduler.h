#pragma once
// Scheduler: continuous batching over one Transformer on its own thread. Requests wait in a
// bounded queue and are admitted while KV pages remain for their whole run (prompt + max_tokens,
// so a running sequence never finds the pool empty). Each step is one forward pass: the decode
// steps of every running sequence, then prefill chunks of the sequences still reading their
// prompt, up to a per-step token budget (a long prompt is read over many steps and never stalls
// the others' decoding). Greedy requests take the token the backend chooses on its device where it
// can (no logits copied back); the others sample on the host with their own seeded Sampler. Either
// way a request gets the same tokens alone or batched. A sequence's pages are freed when it
// finishes, fails or is cancelled.
//
// A backend that serves a single sequence (open_sequence throws InputError; the CUDA backend did
// before it batched) is run one request at a time on its default sequence, under its method.
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>

#include "core/error.h"
#include "engine/request.h"
#include "engine/scheduler_stall_budget.h"
#include "runtime/transformer.h"

namespace deltainfer::tokenizer {
class Tokenizer;
}

namespace deltainfer::engine {

// The queue is full: try again later (HTTP 429).
class QueueFull : public Error {
 public:
  using Error::Error;
};

// The scheduler is shutting down and accepts nothing new (HTTP 503).
class ShuttingDown : public Error {
 public:
  using Error::Error;
};

struct SchedulerOptions {
  int64_t max_queue = 256;    // requests waiting for admission
  int64_t max_batch = 16;     // sequences running at once
  int64_t step_tokens = 512;  // tokens of one forward pass (capped by the backend's max_batch_tokens)
  // Passes that read prompt chunks beside running decodes are spaced so that the decoding
  // sequences' mean pass time stays within max_stall × a pass of decodes alone (StallBudget);
  // 0: every pass reads prompts.
  double max_stall = 0.0;
};

// Forward passes run and their time; decode passes are those of decode steps only (no prompt
// chunk: what a backend may replay as a captured graph).
struct StepCounts {
  int64_t passes = 0;
  double seconds = 0.0;
  int64_t decode_passes = 0;
  double decode_seconds = 0.0;
};

struct SchedulerStats {
  int64_t queued = 0;
  int64_t running = 0;
  runtime::KvUsage kv;
  StepCounts steps;
  bool batched = true;          // false: one sequence at a time on the default sequence
};

class Scheduler {
 public:
  // `method`: the attention method of requests that name none. Starts the scheduler's thread.
  Scheduler(runtime::Transformer& model, const tokenizer::Tokenizer& tokenizer, attention::AttentionConfig method,
            SchedulerOptions options);
  // Cancels whatever is left and joins the thread.
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Queues the request. Throws InputError when it can never run (empty prompt, a prompt that does
  // not fit the context, more KV pages than the pool has, bad sampling parameters), QueueFull,
  // or ShuttingDown. The callbacks run on the scheduler's thread.
  RequestId submit(CompletionRequest request, CompletionCallbacks callbacks);
  // Drops the request (queued or running) and frees its pages before the next step; its on_done
  // reports Cancelled. Unknown or finished ids are ignored.
  void cancel(RequestId id);
  // Accepts nothing new, lets every accepted request finish, then stops the thread.
  void drain();

  SchedulerStats stats() const;
  const SchedulerOptions& options() const { return options_; }
  // The method of requests that name none.
  const attention::AttentionConfig& default_method() const { return default_method_; }

 private:
  struct Active;
  struct Step;

  void run();
  bool wait_for_work(std::unique_lock<std::mutex>& lock);
  void drop_cancelled(std::vector<std::unique_ptr<Active>>& finished);
  void admit(std::vector<std::unique_ptr<Active>>& finished);
  bool open_sequence(Active& active, std::string& error);
  Step build_step();
  float* logits_of(Active& active) const;
  static void choose_on_device(runtime::BatchEntry& entry, Active& active);
  void run_step(Step& step);
  void count_step(const runtime::BatchPlan& plan, double seconds);  // under mutex_
  void advance(Active& active, int32_t token);
  void finish(Active& active, FinishReason reason, std::string error = {});
  void release(Active& active);
  int64_t pages_needed(const CompletionRequest& request) const;

  runtime::Transformer& model_;
  const tokenizer::Tokenizer& tokenizer_;
  const attention::AttentionConfig default_method_;
  SchedulerOptions options_;
  std::vector<int32_t> stop_ids_;
  bool batched_ = true;
  int64_t pool_pages_ = 0;  // KV pages of the whole pool (constant)
  StallBudget stall_budget_;  // the scheduler thread's own

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool draining_ = false;
  bool stopping_ = false;
  RequestId next_id_ = 1;
  std::deque<std::unique_ptr<Active>> queue_;  // guarded by mutex_
  std::vector<RequestId> cancelled_;           // guarded by mutex_
  std::vector<std::unique_ptr<Active>> running_;  // the scheduler thread's own
  int64_t running_count_ = 0;                  // guarded by mutex_ (mirror of running_.size())
  int64_t reserved_pages_ = 0;                 // scheduler thread: pages promised to running sequences
  runtime::KvUsage kv_usage_;                  // guarded by mutex_: after the last step
  StepCounts step_counts_;                     // guarded by mutex_
  std::thread thread_;
};

}  // namespace deltainfer::engine
