// The batched forward pass on the GPU: sequences of different lengths and attention methods in one
// batch (prefill chunks beside decode steps, sequences joining and leaving between steps) give each
// sequence the logits it gets alone, within bf16 error, and the same greedy tokens for 32 steps
// except at near-ties (reported). Alone and batched runs are fed the same tokens (the alone run's
// greedy continuation), so a near-tie cannot make them diverge.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <cuda_runtime_api.h>

#include "attention/attention_config.h"
#include "backend/cuda/cuda_transformer.h"
#include "engine/sampler.h"
#include "gpu/model_fixtures.h"
#include "model/model_source.h"
#include "support/batch_driver.h"

namespace deltainfer {
namespace {

using attention::AttentionConfig;
using runtime::decode_entry;
using runtime::prefill_entry;
using testing::BatchedRuns;
using testing::random_prompt;
using testing::SequenceRun;
using testing::small_sliding_delta;
using testing::small_sparse_decode;
using testing::Workload;

// Alone and batched runs differ only in the rows beside a sequence's in the GEMMs: cuBLASLt picks
// other kernels for other row counts (split-K for one row), so bf16 outputs round differently and
// the difference grows over 30 layers: observed on the H200 up to ~0.04 relative L2 of the logits
// (dense, sliding, StreamingLLM). The bound for every step is ModelParity's bf16 logit tolerance.
//
// Methods that choose their keys from scores each step (DELTA, Tidal, Quest) may choose another
// page when two pages' scores are that close (random prompts make flat scores): seen on the H200
// (2026-12-01, 10 runs) as single steps at 0.17-0.29 with both neighbours back under 0.08, and
// greedy flips there at top-two gaps of 0.18-0.33; and (2026-12-02, 14 runs) as runs of two and
// three steps, since a near-tie between pages can outlast one appended key: Quest at budget 128,
// steps 22-24 at 0.157 / 0.216 / 0.166 then 0.052 (DELTAINFER_TEST_SEED=296669268), steps 9-10 at
// 0.096 / 0.098 (3904948614), each failing identically on the v3 and the FA3-style prefill kernel.
// Such a run, of at most kLongestFlipRun steps that all stay under kOrderOne and with the steps
// around it within the bound, is reported as a selection near-tie and excused, at most
// kMostSelectionFlips steps per sequence. A wrong page table, position or selection set is no such
// run: it moves every later step by order 1 (relative L2 > kOrderOne). The batched run is also run
// twice and must repeat bit for bit, so that an excused step cannot be a race (alone runs are
// checked the same way below).
constexpr double kRelativeL2 = 8e-2;
constexpr double kOrderOne = 0.3;
constexpr size_t kLongestFlipRun = 3;
constexpr int kMostSelectionFlips = 3;

bool selects_keys(const AttentionConfig& method) {
  const attention::DecodeKind kind = method.decode.kind;
  return kind == attention::DecodeKind::Delta || kind == attention::DecodeKind::Tidal ||
         kind == attention::DecodeKind::Quest;
}

// A greedy disagreement is a near-tie when the alone run's top two logits are closer than
// kNoiseSigmas times the root-mean-square difference of that step's logits (batched − alone), or
// than kNearTie. A fixed gap alone contradicted the logit bound: a step at rel L2 0.05 (within
// kRelativeL2) flipped at a gap of 0.38 (Quest, H200, 2026-12-02), as bf16 noise of that size
// does. Noise spreads over the vocabulary; a bug that moves the top tokens more than the rest is
// still reported, and a step whose logits move by order 1 fails the L2 bound anyway.
constexpr double kNearTie = 0.15;
constexpr double kNoiseSigmas = 4.0;
constexpr int64_t kChunk = 256;  // a multiple of every γ below
constexpr int kSteps = 32;

AttentionConfig sliding_delta_with_delta_decode() {
  return small_sparse_decode(attention::DecodeKind::Delta, small_sliding_delta());
}

// Random prompts, from DELTAINFER_TEST_SEED when set (to replay a failure) or a fresh seed, which
// is printed.
uint32_t workload_seed() {
  const char* fixed = std::getenv("DELTAINFER_TEST_SEED");
  const uint32_t seed = fixed != nullptr ? static_cast<uint32_t>(std::strtoul(fixed, nullptr, 10)) : std::random_device{}();
  std::cout << "workload seed " << seed << " (DELTAINFER_TEST_SEED replays it)\n";
  return seed;
}

std::vector<Workload> workloads(int32_t vocab) {
  std::mt19937 rng(workload_seed());
  const auto prompt = [&](int64_t n) { return random_prompt(rng, n, vocab); };
  return {
      {prompt(7), AttentionConfig{}, 0, kSteps},
      {prompt(300), sliding_delta_with_delta_decode(), 0, kSteps},
      {prompt(900), small_sparse_decode(attention::DecodeKind::Streaming), 1, kSteps - 8},
      {prompt(1500), small_sparse_decode(attention::DecodeKind::Tidal), 2, kSteps},
      {prompt(2600), AttentionConfig{}, 4, kSteps - 4},
      {prompt(64), sliding_delta_with_delta_decode(), 9, kSteps},
      {prompt(700), small_sparse_decode(attention::DecodeKind::Quest), 1, kSteps},  // two Quest sequences:
      {prompt(1100), small_sparse_decode(attention::DecodeKind::Quest), 3, kSteps},  // one batched selection
  };
}

double relative_l2(const std::vector<float>& got, const std::vector<float>& want) {
  double diff = 0, norm = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    diff += (double{got[i]} - want[i]) * (double{got[i]} - want[i]);
    norm += double{want[i]} * want[i];
  }
  return std::sqrt(diff / norm);
}

double rms_difference(const std::vector<float>& got, const std::vector<float>& want) {
  double sum = 0;
  for (size_t i = 0; i < want.size(); ++i) sum += (double{got[i]} - want[i]) * (double{got[i]} - want[i]);
  return std::sqrt(sum / static_cast<double>(want.size()));
}

double top_two_gap(const std::vector<float>& logits) {
  std::vector<float> sorted = logits;
  std::partial_sort(sorted.begin(), sorted.begin() + 2, sorted.end(), std::greater<float>());
  return double{sorted[0]} - sorted[1];
}

std::unique_ptr<runtime::Transformer> open_gpu_model(const model::ModelSource& source, int64_t capacity,
                                                     int max_batch) {
  runtime::BackendOptions options;
  options.capacity = capacity;
  options.max_batch = max_batch;
  options.prefill_chunk = kChunk;
  return cuda::make_cuda_transformer(source, options);
}

bool bitwise_equal(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// Steps in runs over the bf16 bound that look like a selection change (see kLongestFlipRun): each
// maximal run of steps at or over kRelativeL2 (so the steps before and after it, where there are
// any, are within it) of at most kLongestFlipRun steps, every one under kOrderOne.
std::vector<bool> selection_flip_steps(const std::vector<double>& errors) {
  std::vector<bool> flip(errors.size(), false);
  size_t begin = 0;
  while (begin < errors.size()) {
    if (errors[begin] < kRelativeL2) {
      ++begin;
      continue;
    }
    size_t end = begin;
    while (end < errors.size() && errors[end] >= kRelativeL2) ++end;
    const auto first = errors.begin() + static_cast<std::ptrdiff_t>(begin);
    const auto last = errors.begin() + static_cast<std::ptrdiff_t>(end);
    const bool short_run = end - begin <= kLongestFlipRun;
    const bool below_order_one = std::all_of(first, last, [](double e) { return e < kOrderOne; });
    if (short_run && below_order_one) {
      std::fill(flip.begin() + static_cast<std::ptrdiff_t>(begin), flip.begin() + static_cast<std::ptrdiff_t>(end), true);
    }
    begin = end;
  }
  return flip;
}

TEST(GpuBatchEquivalence, MixedBatchGivesEachSequenceItsAloneLogits) {
  const std::string path = model_fixtures::model_path();
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "model absent: " << path;
  const auto source = model::open_model_source(path);
  const auto model = open_gpu_model(*source, 4096, 8);
  const std::vector<Workload> work = workloads(source->config().vocab_size);
  std::vector<SequenceRun> alone;
  for (const Workload& w : work) alone.push_back(run_alone(*model, w, kChunk));
  ASSERT_EQ(model->kv_usage().used_pages, 0);
  const BatchedRuns batched = run_batched(*model, work, alone, kChunk);
  EXPECT_GT(batched.mixed_steps, 0);
  EXPECT_EQ(model->kv_usage().used_pages, 0) << "finished sequences returned their pages";
  const BatchedRuns again = run_batched(*model, work, alone, kChunk);

  const size_t vocab = static_cast<size_t>(source->config().vocab_size);
  for (size_t s = 0; s < work.size(); ++s) {
    ASSERT_EQ(batched.sequences[s].logits.size(), alone[s].logits.size()) << "sequence " << s;
    std::vector<double> errors;
    std::string trace;
    size_t repeats = 0;
    for (size_t i = 0; i < alone[s].logits.size(); ++i) {
      errors.push_back(relative_l2(batched.sequences[s].logits[i], alone[s].logits[i]));
      trace += " " + std::to_string(errors.back()).substr(0, 6);
      repeats += bitwise_equal(batched.sequences[s].logits[i], again.sequences[s].logits[i]);
    }
    EXPECT_EQ(repeats, errors.size()) << "sequence " << s << ": the batched run did not repeat bit for bit";
    const std::vector<bool> flip = selects_keys(work[s].method) ? selection_flip_steps(errors)
                                                                : std::vector<bool>(errors.size());
    int agree = 0, near_ties = 0, flips = 0;
    double worst = 0;
    for (size_t i = 0; i < errors.size(); ++i) {
      if (flip[i]) {
        ++flips;
      } else {
        worst = std::max(worst, errors[i]);
      }
      if (i >= alone[s].greedy.size()) continue;
      const int32_t got = engine::argmax(batched.sequences[s].logits[i].data(), static_cast<int32_t>(vocab));
      const double noise = rms_difference(batched.sequences[s].logits[i], alone[s].logits[i]);
      const double gap = top_two_gap(alone[s].logits[i]);
      if (got == alone[s].greedy[i]) {
        ++agree;
      } else if (flip[i] || gap < std::max(kNearTie, kNoiseSigmas * noise)) {
        ++near_ties;
        std::cout << "sequence " << s << " step " << i << ": greedy near-tie, gap " << gap << ", logit noise rms "
                  << noise << "\n";
      } else {
        ADD_FAILURE() << "sequence " << s << " step " << i << ": batched greedy " << got << ", alone "
                      << alone[s].greedy[i] << ", top-two gap " << gap << " (logit noise rms " << noise
                      << "), rel L2 per step:" << trace;
      }
    }
    std::cout << "sequence " << s << " (" << work[s].prompt.size() << " tokens, "
              << attention::describe(work[s].method) << "): worst logits rel L2 " << worst
              << " (selection near-ties excepted: " << flips << " steps), greedy agrees at " << agree << "/"
              << alone[s].greedy.size() << ", near-ties " << near_ties << "\n";
    EXPECT_LT(worst, kRelativeL2) << "sequence " << s << ", rel L2 per step:" << trace;
    EXPECT_LE(flips, kMostSelectionFlips) << "sequence " << s << ", rel L2 per step:" << trace;
  }
}

// The same sequence run alone twice gives bit-identical logits: every kernel and GEMM of a pass
// is deterministic for a given batch shape. A race (say, a selection reading key bounds that the
// same pass is still writing) shows up here as a difference between two identical runs.
TEST(GpuBatchEquivalence, AloneRunsRepeatBitForBit) {
  const std::string path = model_fixtures::model_path();
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "model absent: " << path;
  const auto source = model::open_model_source(path);
  const auto model = open_gpu_model(*source, 4096, 8);
  for (const Workload& w : workloads(source->config().vocab_size)) {
    const SequenceRun first = run_alone(*model, w, kChunk);
    const SequenceRun second = run_alone(*model, w, kChunk);
    ASSERT_EQ(first.logits.size(), second.logits.size());
    size_t differing_steps = 0;
    for (size_t i = 0; i < first.logits.size(); ++i) differing_steps += !bitwise_equal(first.logits[i], second.logits[i]);
    EXPECT_EQ(differing_steps, 0u) << attention::describe(w.method) << ", " << w.prompt.size() << " tokens";
  }
}

// Tokens chosen on the device for a batch (greedy, inside the decode graph) are the argmax of the
// very logits the host gets for the same rows, step after step, as the batch grows and shrinks.
TEST(GpuBatchEquivalence, DeviceGreedyInABatchEqualsHostArgmax) {
  const std::string path = model_fixtures::model_path();
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "model absent: " << path;
  const auto source = model::open_model_source(path);
  const auto model = open_gpu_model(*source, 1024, 4);
  const int32_t vocab = source->config().vocab_size;
  const std::vector<Workload> work = workloads(vocab);
  std::vector<runtime::SequenceId> ids;
  std::vector<std::vector<float>> logits(4, std::vector<float>(static_cast<size_t>(vocab)));
  std::vector<int32_t> next(4);
  for (size_t s = 0; s < 4; ++s) {
    ids.push_back(model->open_sequence(sliding_delta_with_delta_decode()));  // one method: graph-captured steps
    const std::vector<int32_t>& p = work[s].prompt;
    const int64_t n = std::min<int64_t>(static_cast<int64_t>(p.size()), kChunk);
    model->forward(runtime::BatchPlan{{prefill_entry(ids[s], p.data(), n, n, logits[s].data())}});
    next[s] = engine::argmax(logits[s].data(), vocab);
  }
  const runtime::DeviceSampling greedy;
  int checked = 0;
  for (int step = 0; step < 12; ++step) {
    const size_t members = step < 4 ? 4 : step < 8 ? 2 : 3;  // the batch shrinks and grows (graph per size)
    runtime::BatchPlan plan;
    std::vector<int32_t> fed = next, chosen(4, -1);
    for (size_t s = 0; s < members; ++s) {
      runtime::BatchEntry entry = decode_entry(ids[s], &fed[s], logits[s].data());
      entry.sampling = &greedy;
      entry.sampled = &chosen[s];
      plan.entries.push_back(entry);
    }
    model->forward(plan);
    for (size_t s = 0; s < members; ++s) {
      EXPECT_EQ(chosen[s], engine::argmax(logits[s].data(), vocab)) << "step " << step << ", sequence " << s;
      next[s] = chosen[s];
      ++checked;
    }
  }
  EXPECT_EQ(checked, 4 * 4 + 4 * 2 + 4 * 3);
}

// Two sliding+Δ sequences (different decode methods, the same prefill: one prefill_batch group)
// and a vslash+Δ one prefill their chunks in the same steps; each gets the logits it gets alone
// with the same chunks, within the bf16 bound above (only the GEMMs' row counts differ). A Δ row,
// position or page row taken from the wrong sequence moves a logit row by order 1.
TEST(GpuBatchEquivalence, SparsePrefillsOfOneStepShareLaunches) {
  const std::string path = model_fixtures::model_path();
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "model absent: " << path;
  const auto source = model::open_model_source(path);
  const auto model = open_gpu_model(*source, 4096, 4);
  const int32_t vocab = source->config().vocab_size;
  AttentionConfig vslash_delta;
  vslash_delta.prefill.kind = attention::PrefillKind::VerticalSlash;
  vslash_delta.prefill.delta = true;
  vslash_delta.prefill.gamma = 16;
  vslash_delta.prefill.vertical = 64;
  vslash_delta.prefill.slash = 128;
  vslash_delta.prefill.dense_tail = 32;
  const std::vector<AttentionConfig> methods = {small_sliding_delta(), sliding_delta_with_delta_decode(), vslash_delta};
  std::mt19937 rng(workload_seed());
  // Chunk boundaries per sequence (multiples of γ 16); the steps' rows stay within max_batch_tokens.
  const std::vector<std::vector<int64_t>> cuts = {{0, 96, 176, 250}, {0, 64, 128, 200}, {0, 48, 96, 130}};
  std::vector<std::vector<int32_t>> prompts;
  for (const std::vector<int64_t>& c : cuts) prompts.push_back(random_prompt(rng, c.back(), vocab));

  const auto run = [&](const std::vector<size_t>& members) {
    std::vector<runtime::SequenceId> ids;
    for (size_t s : members) ids.push_back(model->open_sequence(methods[s]));
    std::vector<std::vector<float>> logits(members.size(), std::vector<float>(static_cast<size_t>(vocab)));
    for (size_t step = 0; step + 1 < cuts[0].size(); ++step) {
      runtime::BatchPlan plan;
      for (size_t m = 0; m < members.size(); ++m) {
        const std::vector<int64_t>& c = cuts[members[m]];
        const bool last = step + 2 == c.size();
        plan.entries.push_back(prefill_entry(ids[m], prompts[members[m]].data() + c[step], c[step + 1] - c[step],
                                             c.back(), last ? logits[m].data() : nullptr));
      }
      model->forward(plan);
    }
    for (runtime::SequenceId id : ids) model->close_sequence(id);
    return logits;
  };
  const std::vector<std::vector<float>> together = run({0, 1, 2});
  for (size_t s = 0; s < methods.size(); ++s) {
    const std::vector<float> alone = run({s}).front();
    ASSERT_TRUE(std::all_of(alone.begin(), alone.end(), [](float x) { return std::isfinite(x); })) << "sequence " << s;
    const double error = relative_l2(together[s], alone);
    std::cout << "sequence " << s << " (" << attention::describe(methods[s]) << "): batched prefill logits rel L2 "
              << error << "\n";
    EXPECT_LT(error, kRelativeL2) << "sequence " << s;
    if (top_two_gap(alone) >= kNearTie) {
      EXPECT_EQ(engine::argmax(together[s].data(), vocab), engine::argmax(alone.data(), vocab)) << "sequence " << s;
    }
  }
}

// A second method's workspaces are allocated when its first sequence opens and freed when its last
// one closes; the default method's stay. vslash+Δ at 64K positions holds its estimator's buffers.
TEST(GpuBatchEquivalence, AMethodsWorkspacesLeaveWithItsLastSequence) {
  const std::string path = model_fixtures::model_path();
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "model absent: " << path;
  const auto source = model::open_model_source(path);
  const auto model = open_gpu_model(*source, 65536, 2);
  AttentionConfig vslash;
  vslash.prefill.kind = attention::PrefillKind::VerticalSlash;
  vslash.prefill.delta = true;
  const auto free_bytes = [] {
    size_t free = 0, total = 0;
    EXPECT_EQ(cudaMemGetInfo(&free, &total), cudaSuccess);
    return static_cast<double>(free);
  };
  const double before = free_bytes();
  const runtime::SequenceId a = model->open_sequence(vslash), b = model->open_sequence(vslash);
  const double with_two = free_bytes();
  EXPECT_GT(before - with_two, 1e6) << "the vslash workspaces were not allocated";
  model->close_sequence(a);
  EXPECT_EQ(free_bytes(), with_two) << "freed while a sequence still uses the method";
  model->close_sequence(b);
  EXPECT_NEAR(free_bytes(), before, 2.0 * (1 << 20)) << "the method's workspaces outlived its sequences";
  const runtime::SequenceId c = model->open_sequence(vslash);  // and it comes back
  const std::vector<int32_t> prompt(300, 42);
  std::vector<float> logits(static_cast<size_t>(source->config().vocab_size));
  model->forward(runtime::BatchPlan{{prefill_entry(c, prompt.data(), 256, 300, nullptr)}});
  model->forward(runtime::BatchPlan{{prefill_entry(c, prompt.data() + 256, 44, 300, logits.data())}});
  EXPECT_TRUE(std::all_of(logits.begin(), logits.end(), [](float x) { return std::isfinite(x); }));
  model->close_sequence(c);
}

}  // namespace
}  // namespace deltainfer
