// The continuous-batching scheduler on a fake transformer whose logits depend only on each
// sequence's own tokens: batched requests get exactly the text engine::generate gives them alone,
// prompts are chunked under the step budget beside running decodes, and pages come back whatever
// happens (finish, cancel, shutdown).
#include "engine/scheduler.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <random>
#include <thread>

#include "engine/generator.h"
#include "unit/engine/fake_transformer.h"

namespace deltainfer::engine {
namespace {

using testing::FakeTransformer;

struct Finished {
  CompletionOutcome outcome;
  std::string streamed;
};

// Submits the request and returns a future of what came back (streamed text + outcome).
std::future<Finished> submit(Scheduler& scheduler, CompletionRequest request, RequestId* id = nullptr) {
  auto promise = std::make_shared<std::promise<Finished>>();
  auto streamed = std::make_shared<std::string>();
  CompletionCallbacks callbacks;
  callbacks.on_text = [streamed](std::string_view text) { streamed->append(text); };
  callbacks.on_done = [promise, streamed](const CompletionOutcome& outcome) {
    promise->set_value({outcome, *streamed});
  };
  const RequestId got = scheduler.submit(std::move(request), std::move(callbacks));
  if (id != nullptr) *id = got;
  return promise->get_future();
}

Finished wait(std::future<Finished>& future) {
  EXPECT_EQ(future.wait_for(std::chrono::seconds(30)), std::future_status::ready) << "request never finished";
  return future.get();
}

CompletionRequest request_for(int index, std::mt19937& rng) {
  CompletionRequest request;
  const int length = 1 + static_cast<int>(rng() % 300);
  for (int i = 0; i < length; ++i) request.prompt.push_back(static_cast<int32_t>('a' + rng() % 26));
  request.max_tokens = 5 + static_cast<int64_t>(rng() % 40);
  request.sampling.temperature = index % 2 == 0 ? 0.0f : 0.9f;
  request.sampling.seed = static_cast<uint64_t>(index) * 7919;
  if (index % 5 == 0) request.stop_strings = {"e"};
  return request;
}

SchedulerOptions options(int64_t max_batch, int64_t step_tokens = 128, int64_t max_queue = 256) {
  SchedulerOptions o;
  o.max_batch = max_batch;
  o.step_tokens = step_tokens;
  o.max_queue = max_queue;
  return o;
}

// Every test serves byte-level tokens.
class SchedulerTest : public ::testing::Test {
 protected:
  const tokenizer::Tokenizer tok = testing::byte_tokenizer();
};

// What engine::generate (the CLI's path, on the default sequence) gives each request alone.
std::vector<GenerationResult> generate_alone(FakeTransformer& model, const tokenizer::Tokenizer& tok,
                                             const std::vector<CompletionRequest>& requests) {
  std::vector<GenerationResult> alone;
  for (const CompletionRequest& r : requests) {
    model.truncate(0);
    alone.push_back(generate(model, tok, r));
  }
  model.truncate(0);
  return alone;
}

// Submits every request at once to a scheduler over `model` and expects each to get exactly
// `alone`'s completion; returns the plans the model ran.
std::vector<testing::PlanRecord> expect_alone_completions(FakeTransformer& model, const tokenizer::Tokenizer& tok,
                                                          const std::vector<CompletionRequest>& requests,
                                                          const std::vector<GenerationResult>& alone) {
  Scheduler scheduler(model, tok, {}, options(16));
  std::vector<std::future<Finished>> futures;
  for (const CompletionRequest& r : requests) futures.push_back(submit(scheduler, r));
  for (size_t i = 0; i < requests.size(); ++i) {
    const Finished got = wait(futures[i]);
    EXPECT_EQ(got.outcome.tokens, alone[i].tokens) << "request " << i;
    EXPECT_EQ(got.outcome.text, alone[i].text) << "request " << i;
    EXPECT_EQ(got.streamed, alone[i].text) << "request " << i;
    const bool stopped = alone[i].stop_reason == StopReason::EndOfSequence || alone[i].stop_reason == StopReason::StopString;
    EXPECT_EQ(got.outcome.finish, stopped ? FinishReason::Stopped : FinishReason::Length) << "request " << i;
    EXPECT_EQ(got.outcome.prompt_tokens, static_cast<int64_t>(requests[i].prompt.size()));
  }
  EXPECT_EQ(scheduler.stats().kv.used_pages, 0);
  return model.plans();
}

// request_for's sixteen (half greedy, half seeded sampling), or all of them greedy.
std::vector<CompletionRequest> sixteen_requests(bool all_greedy) {
  std::mt19937 rng(12);
  std::vector<CompletionRequest> requests;
  for (int i = 0; i < 16; ++i) {
    requests.push_back(request_for(i, rng));
    if (all_greedy) requests.back().sampling.temperature = 0.0f;
  }
  return requests;
}

TEST_F(SchedulerTest, ConcurrentRequestsGetExactlyTheirAloneCompletion) {
  FakeTransformer model(1024, 200, 256);
  const std::vector<CompletionRequest> requests = sixteen_requests(false);
  const std::vector<GenerationResult> alone = generate_alone(model, tok, requests);
  int widest = 0;
  for (const testing::PlanRecord& plan : expect_alone_completions(model, tok, requests, alone)) {
    widest = std::max(widest, plan.decodes);
    EXPECT_EQ(plan.device_tokens, 0) << "a backend that does not sample on its device is never asked to";
  }
  EXPECT_GT(widest, 4) << "decode steps of several sequences shared a forward pass";
}

// Runs `requests` on a fake that chooses greedy tokens itself, expecting each to get its alone
// completion on a fake that does not; returns the plans the first one ran.
std::vector<testing::PlanRecord> plans_choosing_on_device(const tokenizer::Tokenizer& tok,
                                                          const std::vector<CompletionRequest>& requests) {
  FakeTransformer host(1024, 200, 256);
  const std::vector<GenerationResult> alone = generate_alone(host, tok, requests);
  FakeTransformer device(1024, 200, 256);
  device.choose_greedy_tokens_on_device();
  return expect_alone_completions(device, tok, requests, alone);
}

TEST_F(SchedulerTest, GreedyTokensAreChosenOnTheDeviceWithoutLogits) {
  int device_tokens = 0;
  for (const testing::PlanRecord& plan : plans_choosing_on_device(tok, sixteen_requests(true))) {
    EXPECT_EQ(plan.logits_entries, 0) << "no logits cross to the host when every request is greedy";
    device_tokens += plan.device_tokens;
  }
  EXPECT_GT(device_tokens, 16) << "the tokens came from the device";
}

TEST_F(SchedulerTest, MixedSamplingDecodeStepsAskEveryEntryForTheSameOutputs) {
  int mixed_decode_steps = 0;
  for (const testing::PlanRecord& plan : plans_choosing_on_device(tok, sixteen_requests(false))) {
    EXPECT_TRUE(plan.uniform_decodes) << "a decode step a backend could not replay as one graph";
    mixed_decode_steps += plan.decodes > 1 && plan.logits_entries > 0 && plan.device_tokens > 0;
  }
  EXPECT_GT(mixed_decode_steps, 0) << "greedy and sampled requests decoded in the same step";
}

TEST_F(SchedulerTest, LongPromptIsChunkedBesideRunningDecodes) {
  FakeTransformer model(4096, 200, 512);
  Scheduler scheduler(model, tok, {}, options(4, /*step_tokens=*/64));
  CompletionRequest short_request;
  short_request.prompt = {'h', 'i'};
  short_request.max_tokens = 400;
  short_request.stop_at_eos = false;
  short_request.sampling.temperature = 0;
  CompletionRequest long_request;
  long_request.prompt.assign(3000, 'x');
  long_request.max_tokens = 2;
  // Submitted together (the first pass waits at the gate until both are in): the short prompt is
  // read in the first pass, then it decodes while the long prompt is read 63 tokens at a time.
  model.close_gate();
  auto short_future = submit(scheduler, short_request);
  auto long_future = submit(scheduler, long_request);
  model.open_gate();
  wait(long_future);
  wait(short_future);

  int long_chunks = 0;
  const std::vector<testing::PlanRecord> plans = model.plans();
  for (size_t i = 0; i < plans.size(); ++i) {
    const testing::PlanRecord& plan = plans[i];
    EXPECT_LE(plan.decodes + plan.prefill_tokens, 64) << "a pass stays within the step budget";
    if (plan.prefill_tokens > 0 && i > 0) {
      ++long_chunks;
      EXPECT_EQ(plan.decodes, 1) << "the running sequence decodes in every pass of the long prefill";
    }
  }
  EXPECT_GE(long_chunks, 3000 / 64);
  const StepCounts counts = scheduler.stats().steps;
  EXPECT_EQ(counts.passes, static_cast<int64_t>(plans.size()));
  EXPECT_EQ(counts.decode_passes, std::count_if(plans.begin(), plans.end(), [](const testing::PlanRecord& plan) {
              return plan.prefill_tokens == 0;
            }));
  EXPECT_GT(counts.decode_passes, 0) << "the short request decoded alone once the long prompt was read";
  EXPECT_GE(counts.seconds, counts.decode_seconds);
}

TEST_F(SchedulerTest, StallBoundSpacesPromptChunksBetweenDecodePasses) {
  FakeTransformer model(4096, 200, 512);
  model.set_prompt_token_cost(std::chrono::microseconds(200));  // a 63-token chunk: ~13 ms
  SchedulerOptions bounded = options(4, /*step_tokens=*/64);
  bounded.max_stall = 2.0;
  Scheduler scheduler(model, tok, {}, bounded);
  CompletionRequest short_request;
  short_request.prompt = {'h', 'i'};
  short_request.max_tokens = 200;
  short_request.stop_at_eos = false;
  CompletionRequest long_request;
  long_request.prompt.assign(3000, 'x');
  long_request.max_tokens = 2;
  model.close_gate();  // both are in before the first pass
  auto short_future = submit(scheduler, short_request);
  auto long_future = submit(scheduler, long_request);
  model.open_gate();
  EXPECT_EQ(wait(short_future).outcome.tokens.size(), 200u);
  EXPECT_NE(wait(long_future).outcome.finish, FinishReason::Failed) << "the long prompt was read all the same";
  int chunks_beside_decodes = 0;
  for (const testing::PlanRecord& plan : model.plans()) chunks_beside_decodes += plan.decodes > 0 && plan.prefill_tokens > 0;
  // Unbounded, all 48 chunks would ride with the short request's decodes; bounded at 2x a pass of
  // decodes alone (microseconds here), a chunk waits for the decodes to earn its ~13 ms.
  EXPECT_GT(chunks_beside_decodes, 0);
  EXPECT_LT(chunks_beside_decodes, 10);
  EXPECT_THROW(Scheduler(model, tok, {}, [] {
                 SchedulerOptions o;
                 o.max_stall = 0.5;
                 return o;
               }()),
               InputError);
}

TEST_F(SchedulerTest, CancelFreesPagesOfRunningAndQueuedRequests) {
  FakeTransformer model(2048, 64, 256);
  Scheduler scheduler(model, tok, {}, options(1));
  CompletionRequest endless;
  endless.prompt.assign(100, 'a');
  endless.max_tokens = 1500;
  endless.stop_at_eos = false;
  RequestId running = 0, queued = 0;
  auto running_future = submit(scheduler, endless, &running);
  auto queued_future = submit(scheduler, endless, &queued);
  while (scheduler.stats().kv.used_pages == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  scheduler.cancel(queued);
  scheduler.cancel(running);
  EXPECT_EQ(wait(running_future).outcome.finish, FinishReason::Cancelled);
  EXPECT_EQ(wait(queued_future).outcome.finish, FinishReason::Cancelled);
  const SchedulerStats stats = scheduler.stats();
  EXPECT_EQ(stats.kv.used_pages, 0);
  EXPECT_EQ(stats.running, 0);
  EXPECT_EQ(stats.queued, 0);
}

TEST_F(SchedulerTest, RandomSubmitsAndCancelsLeakNoPages) {
  FakeTransformer model(1024, 40, 128);
  Scheduler scheduler(model, tok, {}, options(6, 96, 64));
  std::mt19937 rng(5);
  std::vector<std::pair<RequestId, std::future<Finished>>> live;
  int refused = 0;
  for (int i = 0; i < 400; ++i) {
    CompletionRequest r = request_for(i, rng);
    RequestId id = 0;
    try {
      auto future = submit(scheduler, r, &id);
      live.emplace_back(id, std::move(future));
    } catch (const QueueFull&) {
      ++refused;
    }
    if (!live.empty() && rng() % 3 == 0) scheduler.cancel(live[rng() % live.size()].first);
    if (rng() % 4 == 0) std::this_thread::sleep_for(std::chrono::microseconds(rng() % 2000));
  }
  int completed = 0, cancelled = 0;
  for (auto& [id, future] : live) {
    const FinishReason finish = wait(future).outcome.finish;
    EXPECT_NE(finish, FinishReason::Failed);
    (finish == FinishReason::Cancelled ? cancelled : completed)++;
  }
  EXPECT_GT(completed, 0);
  EXPECT_GT(cancelled, 0);
  EXPECT_EQ(completed + cancelled + refused, 400);
  const SchedulerStats stats = scheduler.stats();
  EXPECT_EQ(stats.kv.used_pages, 0);
  EXPECT_EQ(stats.running, 0);
  EXPECT_EQ(stats.queued, 0);
}

TEST_F(SchedulerTest, FullQueueRefusesAndAdmissionWaitsForPages) {
  FakeTransformer model(1024, 4, 128);  // room for two sequences of 2 pages
  Scheduler scheduler(model, tok, {}, options(8, 128, /*max_queue=*/2));
  model.close_gate();
  CompletionRequest r;
  r.prompt.assign(64, 'a');
  r.max_tokens = 64;  // 128 positions: 2 pages
  std::vector<std::future<Finished>> futures;
  futures.push_back(submit(scheduler, r));
  while (scheduler.stats().running < 1) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  // The first runs (held at the gate); two wait in the queue, then it is full.
  futures.push_back(submit(scheduler, r));
  futures.push_back(submit(scheduler, r));
  EXPECT_EQ(scheduler.stats().queued, 2);
  EXPECT_THROW(submit(scheduler, r), QueueFull);
  model.open_gate();
  // Two at a time fit the pool: the others waited for pages instead of failing for want of them.
  for (auto& future : futures) EXPECT_NE(wait(future).outcome.finish, FinishReason::Failed);
  EXPECT_EQ(scheduler.stats().kv.used_pages, 0);
}

TEST_F(SchedulerTest, RefusesRequestsThatCanNeverRun) {
  FakeTransformer model(256, 8, 128);
  Scheduler scheduler(model, tok, {}, options(2));
  CompletionRequest r;
  EXPECT_THROW(submit(scheduler, r), InputError);  // empty prompt
  r.prompt.assign(257, 'a');
  EXPECT_THROW(submit(scheduler, r), InputError);  // longer than the context
  r.prompt = {'a', 999};
  EXPECT_THROW(submit(scheduler, r), InputError);  // outside the vocabulary
  r.prompt = {'a'};
  r.sampling.top_p = 2.0f;
  EXPECT_THROW(submit(scheduler, r), InputError);
}

TEST_F(SchedulerTest, SingleSequenceBackendServesOneAtATimeOnItsDefaultSequence) {
  FakeTransformer model(1024, 16, 128, /*opens_sequences=*/false);
  std::mt19937 rng(3);
  std::vector<CompletionRequest> requests;
  for (int i = 0; i < 4; ++i) requests.push_back(request_for(i, rng));
  const std::vector<GenerationResult> alone = generate_alone(model, tok, requests);
  Scheduler scheduler(model, tok, {}, options(8));
  EXPECT_FALSE(scheduler.stats().batched);
  EXPECT_EQ(scheduler.options().max_batch, 1);
  std::vector<std::future<Finished>> futures;
  for (const CompletionRequest& r : requests) futures.push_back(submit(scheduler, r));
  for (size_t i = 0; i < requests.size(); ++i) EXPECT_EQ(wait(futures[i]).outcome.text, alone[i].text);
  for (const testing::PlanRecord& plan : model.plans()) EXPECT_LE(plan.decodes + (plan.prefill_tokens > 0), 1);
  CompletionRequest with_method = requests[0];
  with_method.method = attention::AttentionConfig{};
  EXPECT_THROW(submit(scheduler, with_method), InputError);
  EXPECT_EQ(scheduler.stats().kv.used_pages, 0);
}

TEST_F(SchedulerTest, DrainFinishesAcceptedRequestsThenRefusesNewOnes) {
  FakeTransformer model(1024, 64, 128);
  Scheduler scheduler(model, tok, {}, options(2));
  std::mt19937 rng(9);
  std::vector<std::future<Finished>> futures;
  for (int i = 0; i < 6; ++i) futures.push_back(submit(scheduler, request_for(i, rng)));
  scheduler.drain();
  for (auto& future : futures) {
    const FinishReason finish = wait(future).outcome.finish;
    EXPECT_TRUE(finish == FinishReason::Stopped || finish == FinishReason::Length);
  }
  EXPECT_THROW(submit(scheduler, request_for(7, rng)), ShuttingDown);
}

TEST_F(SchedulerTest, PerRequestMethodsShareABatchAndBadOnesFail) {
  FakeTransformer model(1024, 64, 128);
  Scheduler scheduler(model, tok, {}, options(4));
  std::mt19937 rng(1);
  CompletionRequest sparse = request_for(2, rng);
  sparse.method = attention::AttentionConfig{};
  sparse.method->decode.kind = attention::DecodeKind::Streaming;
  CompletionRequest bad = request_for(4, rng);
  bad.method = attention::AttentionConfig{};
  bad.method->window = -1;
  auto sparse_future = submit(scheduler, sparse);
  auto bad_future = submit(scheduler, bad);
  EXPECT_NE(wait(sparse_future).outcome.finish, FinishReason::Failed);
  const Finished failed = wait(bad_future);
  EXPECT_EQ(failed.outcome.finish, FinishReason::Failed);
  EXPECT_NE(failed.outcome.error.find("window"), std::string::npos) << failed.outcome.error;
  EXPECT_EQ(scheduler.stats().kv.used_pages, 0);
}

TEST_F(SchedulerTest, UnlimitedMaxTokensRunsToAFullContextLikeGenerate) {
  FakeTransformer model(256, 4, 128);
  CompletionRequest r;
  r.prompt.assign(200, 'q');
  r.max_tokens = INT64_MAX;  // reserves the rest of the context, no more
  r.stop_at_eos = false;
  r.sampling.temperature = 0;
  const GenerationResult alone = generate(model, tok, r);
  model.truncate(0);
  ASSERT_EQ(alone.stop_reason, StopReason::ContextFull);
  Scheduler scheduler(model, tok, {}, options(2));
  auto future = submit(scheduler, r);
  const Finished got = wait(future);
  EXPECT_EQ(got.outcome.finish, FinishReason::Length);
  EXPECT_EQ(got.outcome.tokens, alone.tokens);
  EXPECT_EQ(scheduler.stats().kv.used_pages, 0);
}

TEST_F(SchedulerTest, DeltaPromptChunksStartOnMultiplesOfGamma) {
  FakeTransformer model(4096, 200, 100);  // refuses a Δ chunk that does not start on a multiple of γ
  Scheduler scheduler(model, tok, {}, options(4, 100));
  std::vector<std::future<Finished>> futures;
  CompletionRequest decoding;
  decoding.prompt = {'a', 'b'};
  decoding.max_tokens = 300;
  decoding.stop_at_eos = false;
  for (int i = 0; i < 3; ++i) futures.push_back(submit(scheduler, decoding));
  CompletionRequest delta;
  delta.prompt.assign(1000, 'z');
  delta.max_tokens = 3;
  delta.method = attention::AttentionConfig{};
  delta.method->prefill.kind = attention::PrefillKind::Sliding;
  delta.method->prefill.delta = true;
  delta.method->prefill.gamma = 16;
  delta.method->prefill.dense_tail = 16;
  delta.method->window = 64;
  delta.method->sink = 4;
  futures.push_back(submit(scheduler, delta));
  // The passes have room for 97 prompt tokens beside three decodes: 96 are read, then 96 more.
  for (auto& future : futures) {
    const Finished got = wait(future);
    EXPECT_NE(got.outcome.finish, FinishReason::Failed) << got.outcome.error;
  }
  EXPECT_EQ(scheduler.stats().kv.used_pages, 0);
}

}  // namespace
}  // namespace deltainfer::engine
