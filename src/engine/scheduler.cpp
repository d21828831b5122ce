#include "engine/scheduler.h"

#include <algorithm>
#include <chrono>
#include <unordered_set>

#include "core/kv_page.h"
#include "engine/text_stream.h"
#include "tokenizer/tokenizer.h"

namespace deltainfer::engine {
namespace {

using Clock = std::chrono::steady_clock;

// The device's greedy rule; one object, so every greedy entry of a step asks for equal outputs.
const runtime::DeviceSampling kDeviceGreedy{};

bool is_decode(const runtime::BatchEntry& entry) { return entry.decode; }

double seconds_between(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double>(to - from).count();
}

// Whether `model` runs several sequences: it opens one under `method` (and closes it again), or
// refuses with InputError (a backend that serves only its default sequence).
bool opens_sequences(runtime::Transformer& model, const attention::AttentionConfig& method) {
  try {
    model.close_sequence(model.open_sequence(method));
    return true;
  } catch (const InputError&) {
    return false;
  }
}

}  // namespace

const char* finish_reason_name(FinishReason reason) {
  switch (reason) {
    case FinishReason::Stopped: return "stop";
    case FinishReason::Length: return "length";
    case FinishReason::Cancelled: return "cancelled";
    case FinishReason::Failed: return "error";
  }
  return "unknown";
}

// One accepted request from submit to on_done.
struct Scheduler::Active {
  RequestId id = 0;
  CompletionRequest request;
  CompletionCallbacks callbacks;
  Clock::time_point submitted = Clock::now();
  Clock::time_point first_token;
  int64_t pages = 0;                  // reserved for its whole run
  runtime::SequenceId sequence = -1;  // -1: none open
  int64_t prompt_done = 0;            // prompt tokens run so far
  int64_t chunk_alignment = 1;        // prompt chunks start on multiples of it (Δ's γ)
  bool decoding = false;              // the prompt is done; next_token is its next input
  int32_t next_token = 0;
  // The backend chooses this request's tokens on its device (greedy there is the host's argmax:
  // the largest logit, the lowest id on ties) and writes them to device_token; no logits cross
  // to the host. Otherwise the host samples from `logits` with `sampler`.
  bool device_greedy = false;
  int32_t device_token = -1;
  std::unique_ptr<Sampler> sampler;
  std::unique_ptr<TextStream> stream;
  std::vector<float> logits;  // vocab floats, sized on first use
  CompletionOutcome outcome;
  bool done = false;
};

// One forward pass: entry i of the plan belongs to members[i].
struct Scheduler::Step {
  runtime::BatchPlan plan;
  std::vector<Active*> members;
};

Scheduler::Scheduler(runtime::Transformer& model, const tokenizer::Tokenizer& tokenizer,
                     attention::AttentionConfig method, SchedulerOptions options)
    : model_(model), tokenizer_(tokenizer), default_method_(std::move(method)), options_(options),
      stop_ids_(tokenizer.stop_ids()), stall_budget_(options.max_stall) {
  if (options_.max_queue < 0) throw_input_error("the request queue must hold >= 0 requests (got {})", options_.max_queue);
  if (options_.max_batch < 1) throw_input_error("--max-batch must be >= 1 (got {})", options_.max_batch);
  options_.step_tokens = std::min(options_.step_tokens, model_.max_batch_tokens());
  batched_ = opens_sequences(model_, default_method_);
  if (!batched_) options_.max_batch = 1;
  if (options_.max_batch > options_.step_tokens) {
    throw_input_error("--max-batch {} exceeds the {} tokens of one forward pass (each running sequence decodes one "
                      "token per pass)", options_.max_batch, options_.step_tokens);
  }
  kv_usage_ = model_.kv_usage();
  pool_pages_ = kv_usage_.total_pages;
  thread_ = std::thread([this] { run(); });
}

Scheduler::~Scheduler() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

int64_t Scheduler::pages_needed(const CompletionRequest& request) const {
  const int64_t prompt = static_cast<int64_t>(request.prompt.size());
  const int64_t room = model_.capacity() - prompt;  // >= 0: submit checked the prompt first
  const int64_t positions = prompt + std::min(request.max_tokens, room);
  return pages_for_positions(positions);
}

RequestId Scheduler::submit(CompletionRequest request, CompletionCallbacks callbacks) {
  const int64_t prompt = static_cast<int64_t>(request.prompt.size());
  if (prompt == 0) throw_input_error("the prompt is empty (no tokens to start from)");
  if (prompt > model_.capacity()) {
    throw_input_error("the prompt has {} tokens but the context holds {}", prompt, model_.capacity());
  }
  const int32_t vocab = model_.config().vocab_size;
  for (int32_t token : request.prompt) {
    if (token < 0 || token >= vocab) throw_input_error("token id {} is outside the vocabulary (0..{})", token, vocab - 1);
  }
  if (request.max_tokens < 0) throw_input_error("max_tokens must be >= 0 (got {})", request.max_tokens);
  request.sampling.validate();
  if (!batched_ && request.method) {
    throw_input_error("this backend serves one sequence at a time under the server's attention method; "
                      "a per-request method needs --backend cpu");
  }
  auto active = std::make_unique<Active>();
  active->pages = pages_needed(request);
  if (active->pages > pool_pages_) {
    throw_input_error("the prompt ({} tokens) plus max_tokens ({}) needs {} KV pages of {} tokens but the pool has {} "
                      "(lower max_tokens or raise --kv-memory)", prompt, request.max_tokens, active->pages,
                      kKvPageTokens, pool_pages_);
  }
  active->request = std::move(request);
  active->callbacks = std::move(callbacks);
  std::lock_guard<std::mutex> lock(mutex_);
  if (draining_ || stopping_) throw ShuttingDown("the server is shutting down");
  if (static_cast<int64_t>(queue_.size()) >= options_.max_queue) {
    throw QueueFull(fmt::format("the request queue is full ({} waiting)", queue_.size()));
  }
  active->id = next_id_++;
  const RequestId id = active->id;
  queue_.push_back(std::move(active));
  wake_.notify_all();
  return id;
}

void Scheduler::cancel(RequestId id) {
  std::lock_guard<std::mutex> lock(mutex_);
  cancelled_.push_back(id);
  wake_.notify_all();
}

void Scheduler::drain() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    draining_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

SchedulerStats Scheduler::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  SchedulerStats stats;
  stats.queued = static_cast<int64_t>(queue_.size());
  stats.running = running_count_;
  stats.kv = kv_usage_;
  stats.steps = step_counts_;
  stats.batched = batched_;
  return stats;
}

bool Scheduler::wait_for_work(std::unique_lock<std::mutex>& lock) {
  wake_.wait(lock, [&] {
    return stopping_ || draining_ || !queue_.empty() || running_count_ > 0 || !cancelled_.empty();
  });
  if (stopping_) return false;
  return !(draining_ && queue_.empty() && running_count_ == 0);
}

void Scheduler::run() {
  while (true) {
    std::vector<std::unique_ptr<Active>> finished;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      if (!wait_for_work(lock)) break;
    }
    drop_cancelled(finished);
    admit(finished);
    Step step = build_step();
    const Clock::time_point step_start = Clock::now();
    if (!step.plan.entries.empty()) run_step(step);
    const double step_seconds = seconds_between(step_start, Clock::now());
    stall_budget_.record(std::any_of(step.plan.entries.begin(), step.plan.entries.end(), is_decode),
                         !std::all_of(step.plan.entries.begin(), step.plan.entries.end(), is_decode), step_seconds);
    {
      // Finished sequences leave before their callbacks run, so a client that reads the stats
      // after its response sees its pages freed.
      std::lock_guard<std::mutex> lock(mutex_);
      for (auto it = running_.begin(); it != running_.end();) {
        if ((*it)->done) {
          finished.push_back(std::move(*it));
          it = running_.erase(it);
        } else {
          ++it;
        }
      }
      running_count_ = static_cast<int64_t>(running_.size());
      kv_usage_ = model_.kv_usage();
      if (!step.plan.entries.empty()) count_step(step.plan, step_seconds);
    }
    for (const auto& active : finished) {
      if (active->callbacks.on_done) active->callbacks.on_done(active->outcome);
    }
  }
  // Stopped: whatever is left is cancelled.
  std::vector<std::unique_ptr<Active>> left;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& active : queue_) left.push_back(std::move(active));
    queue_.clear();
  }
  for (auto& active : running_) left.push_back(std::move(active));
  running_.clear();
  for (auto& active : left) {
    if (!active->done) finish(*active, FinishReason::Cancelled);
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    running_count_ = 0;
    kv_usage_ = model_.kv_usage();
  }
  for (const auto& active : left) {
    if (active->callbacks.on_done) active->callbacks.on_done(active->outcome);
  }
}

void Scheduler::count_step(const runtime::BatchPlan& plan, double seconds) {
  ++step_counts_.passes;
  step_counts_.seconds += seconds;
  if (!std::all_of(plan.entries.begin(), plan.entries.end(), is_decode)) return;
  ++step_counts_.decode_passes;
  step_counts_.decode_seconds += seconds;
}

void Scheduler::drop_cancelled(std::vector<std::unique_ptr<Active>>& finished) {
  std::unordered_set<RequestId> ids;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ids.insert(cancelled_.begin(), cancelled_.end());
    cancelled_.clear();
    for (auto it = queue_.begin(); it != queue_.end();) {
      if (ids.count((*it)->id) != 0) {
        finish(**it, FinishReason::Cancelled);
        finished.push_back(std::move(*it));
        it = queue_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& active : running_) {
    if (!active->done && ids.count(active->id) != 0) finish(*active, FinishReason::Cancelled);
  }
}

void Scheduler::admit(std::vector<std::unique_ptr<Active>>& finished) {
  while (true) {
    std::unique_ptr<Active> active;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (queue_.empty() || static_cast<int64_t>(running_.size()) >= options_.max_batch) return;
      if (reserved_pages_ + queue_.front()->pages > pool_pages_) return;  // first come, first served
      active = std::move(queue_.front());
      queue_.pop_front();
    }
    std::string error;
    if (!open_sequence(*active, error)) {
      finish(*active, FinishReason::Failed, error);
      finished.push_back(std::move(active));
      continue;
    }
    reserved_pages_ += active->pages;
    active->outcome.queue_seconds = seconds_between(active->submitted, Clock::now());
    std::lock_guard<std::mutex> lock(mutex_);
    running_.push_back(std::move(active));
    running_count_ = static_cast<int64_t>(running_.size());
  }
}

bool Scheduler::open_sequence(Active& active, std::string& error) {
  try {
    if (batched_) {
      active.sequence = model_.open_sequence(active.request.method.value_or(default_method_));
    } else {
      active.sequence = model_.default_sequence();
      model_.truncate_sequence(active.sequence, 0);
    }
  } catch (const InputError& e) {
    error = e.what();
    return false;
  }
  // A Δ prefill's chunks start on multiples of γ (the CUDA backend requires it); a γ larger than
  // the backend's chunk cannot be required, and is not.
  const attention::AttentionConfig& method = batched_ ? active.request.method.value_or(default_method_) : default_method_;
  if (method.prefill.delta && method.prefill.gamma <= model_.prefill_chunk()) active.chunk_alignment = method.prefill.gamma;
  // Sampling at a temperature stays on the host: the device draws from another generator, and the
  // CUDA backend draws only in batches of one, so a seeded request would get other tokens batched
  // than alone.
  active.device_greedy = model_.samples_on_device() && active.request.sampling.temperature == 0.0f;
  active.sampler = std::make_unique<Sampler>(active.request.sampling);
  active.stream = std::make_unique<TextStream>(active.request.stop_strings);
  active.outcome.prompt_tokens = static_cast<int64_t>(active.request.prompt.size());
  return true;
}

float* Scheduler::logits_of(Active& active) const {
  active.logits.resize(static_cast<size_t>(model_.config().vocab_size));
  return active.logits.data();
}

void Scheduler::choose_on_device(runtime::BatchEntry& entry, Active& active) {
  entry.sampling = &kDeviceGreedy;
  entry.sampled = &active.device_token;
}

Scheduler::Step Scheduler::build_step() {
  Step step;
  int64_t budget = options_.step_tokens;
  // Every decode entry of a step asks for the same outputs (logits if any of them samples on the
  // host, a device token if any of them takes one): a backend that captures decode steps as graphs
  // (CUDA) replays one only for a uniform step, and copies every decode row's logits anyway once
  // one entry wants them.
  bool host_samples = false, device_chooses = false;
  for (auto& active : running_) {
    if (active->done || !active->decoding) continue;
    host_samples = host_samples || !active->device_greedy;
    device_chooses = device_chooses || active->device_greedy;
    step.members.push_back(active.get());
  }
  for (Active* active : step.members) {
    step.plan.entries.push_back(runtime::decode_entry(active->sequence, &active->next_token,
                                                      host_samples ? logits_of(*active) : nullptr));
    if (device_chooses) choose_on_device(step.plan.entries.back(), *active);
    --budget;
  }
  // Prompts are read in admission order (the oldest finishes its prompt first), at most one
  // backend prefill chunk per pass; a chunk that is not the prompt's last ends on a multiple of
  // the sequence's chunk alignment, so the next one starts on it. The last chunk asks for its
  // first token: from the device, or the logits to sample it from. While sequences decode, the
  // stall budget says which passes read prompts.
  int64_t room = step.members.empty() || stall_budget_.allows_prompt() ? std::min(budget, model_.prefill_chunk()) : 0;
  for (auto& active : running_) {
    if (active->done || active->decoding) continue;
    const std::vector<int32_t>& prompt = active->request.prompt;
    const int64_t total = static_cast<int64_t>(prompt.size());
    const int64_t remaining = total - active->prompt_done;
    int64_t count = std::min(room, remaining);
    if (count < remaining) count -= count % active->chunk_alignment;
    if (count <= 0) break;
    const bool last = count == remaining;
    const bool host_logits = last && !active->device_greedy;
    step.plan.entries.push_back(runtime::prefill_entry(active->sequence, prompt.data() + active->prompt_done, count,
                                                       total, host_logits ? logits_of(*active) : nullptr));
    if (last && active->device_greedy) choose_on_device(step.plan.entries.back(), *active);
    step.members.push_back(active.get());
    room -= count;
  }
  return step;
}

void Scheduler::run_step(Step& step) {
  try {
    model_.forward(step.plan);
  } catch (const std::exception& e) {
    // Nothing of the pass is known to have run: its sequences fail rather than retry forever.
    for (Active* active : step.members) finish(*active, FinishReason::Failed, e.what());
    return;
  }
  const int32_t vocab = model_.config().vocab_size;
  for (size_t i = 0; i < step.members.size(); ++i) {
    Active& active = *step.members[i];
    const runtime::BatchEntry& entry = step.plan.entries[i];
    if (!entry.decode) {
      active.prompt_done += entry.n_tokens;
      if (active.prompt_done < static_cast<int64_t>(active.request.prompt.size())) continue;
    }
    advance(active, active.device_greedy ? active.device_token : active.sampler->sample(active.logits.data(), vocab));
  }
}

// The generation loop of engine::generate for one sampled token.
void Scheduler::advance(Active& active, int32_t token) {
  const CompletionRequest& request = active.request;
  CompletionOutcome& outcome = active.outcome;
  if (outcome.tokens.empty()) {
    active.first_token = Clock::now();
    outcome.first_token_seconds = seconds_between(active.submitted, active.first_token);
  }
  if (static_cast<int64_t>(outcome.tokens.size()) >= request.max_tokens) {
    finish(active, FinishReason::Length);
    return;
  }
  if (request.stop_at_eos && std::find(stop_ids_.begin(), stop_ids_.end(), token) != stop_ids_.end()) {
    finish(active, FinishReason::Stopped);
    return;
  }
  outcome.tokens.push_back(token);
  const std::string text = active.stream->push(tokenizer_.token_bytes(token));
  if (!text.empty() && active.callbacks.on_text) active.callbacks.on_text(text);
  if (active.stream->stopped()) {
    finish(active, FinishReason::Stopped);
    return;
  }
  if (static_cast<int64_t>(outcome.tokens.size()) >= request.max_tokens ||
      model_.sequence_length(active.sequence) >= model_.capacity()) {
    finish(active, FinishReason::Length);
    return;
  }
  active.next_token = token;
  active.decoding = true;
}

void Scheduler::finish(Active& active, FinishReason reason, std::string error) {
  CompletionOutcome& outcome = active.outcome;
  if (reason == FinishReason::Stopped || reason == FinishReason::Length) {
    const std::string rest = active.stream->flush();
    if (!rest.empty() && active.callbacks.on_text) active.callbacks.on_text(rest);
  }
  if (active.stream) outcome.text = active.stream->text();
  if (!outcome.tokens.empty()) outcome.decode_seconds = seconds_between(active.first_token, Clock::now());
  outcome.finish = reason;
  outcome.error = std::move(error);
  active.done = true;
  release(active);
}

void Scheduler::release(Active& active) {
  if (active.sequence < 0) return;
  if (batched_) {
    model_.close_sequence(active.sequence);
  } else {
    model_.truncate_sequence(active.sequence, 0);
  }
  active.sequence = -1;
  reserved_pages_ -= active.pages;
}

}  // namespace deltainfer::engine
