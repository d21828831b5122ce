// Quest decode on the GPU fed the CPU reference's own decode inputs on SmolLM2: this separates a
// selection bug from near-tie page flips, which the whole-model parity tests cannot (there the GPU's
// q and keys drift from the CPU's through 30 bf16 layers, and with budget 32 one free page of ~20
// decides a KV head's whole context).
//
// The CPU model decodes the long-context prompts (budget 32, pages of 16, as model_parity_test.cpp);
// at each step an observer hands over every layer's q, cache and chosen key sets. The GPU gets those
// very q and keys, rounded to bf16, in a shuffled paged pool, and runs the engine's own pieces on
// them in the engine's order: QuestBounds (rebuilt after the prefill, one key folded in per step,
// truncated between prompts), QuestSelector and CudaAttention::decode. Checked, per step, Quest
// layer and KV head:
//   - the GPU's set is whole 16-token pages of [0, kv_len), holds the page being written, and has
//     min(budget / 16, pages) pages;
//   - where it differs from the CPU's, every page the GPU kept instead scores within bf16 rounding
//     of every page it dropped instead: s(a) + E(a) >= s(b) - E(b) with the CPU's f64 scores s and
//     E(p) = 2^-7 max_g sum_d |q_gd| max(|min_d|, |max_d|) (rounding q and keys to bf16 moves each
//     product by at most 2 * 2^-8 of itself; f32 sums add ~1e-5 of that);
//   - each layer's attention output is softmax attention over the GPU's sets (dense below
//     --full-layers) within rel L2 1e-2 of an f64 reference on the same bf16 inputs.
// It prints how many KV-head decisions differ and the largest CPU score gap of a swapped pair.
#include <cuda_bf16.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <iostream>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "attention/attention_config.h"
#include "attention/quest.h"
#include "backend/cpu/cpu_transformer.h"
#include "backend/cuda/cuda_attention.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/device_buffer.h"
#include "backend/cuda/methods/decode_calls.h"
#include "backend/cuda/quest_decode.h"
#include "engine/sampler.h"
#include "gpu/gpu_test_support.h"
#include "gpu/model_fixtures.h"
#include "gpu/reference_delta.h"
#include "model/model_source.h"
#include "support/scoped_cpu_weights.h"
#include "tokenizer/tokenizer.h"

namespace deltainfer::cuda {
namespace {

constexpr int64_t kCapacity = 512;
constexpr int kSteps = 12;  // from 311-325 tokens: every prompt's steps cross a 16-token page start
constexpr double kBf16ProductError = 1.0 / 128.0 * (1.0 + 1e-3);
constexpr double kOutputTolerance = 1e-2;

// What the CPU decided for one KV head of a Quest layer at one step.
struct CpuDecision {
  std::vector<double> score;  // per 16-token page, f64 on the f32 q and keys
  std::vector<double> error;  // E(p): how far bf16 rounding may move score[p]
  std::set<int> pages;        // the pages the CPU attended
};

// One layer's decode inputs at one step, as the CPU saw them.
struct LayerStep {
  std::vector<float> q;                 // [n_heads][head_dim]
  std::vector<CpuDecision> decisions;   // per KV head; empty below --full-layers
};

std::set<int> pages_of(const std::vector<attention::KeyRange>& ranges) {
  std::set<int> pages;
  for (const attention::KeyRange& r : ranges) {
    for (int64_t t = r.begin; t < r.end; ++t) pages.insert(static_cast<int>(t / kQuestPage));
  }
  return pages;
}

// E(p) for every page of one KV head: 2^-7 max over the group of sum_d |q_d| max(|min_d|, |max_d|).
std::vector<double> rounding_errors(const attention::HeadShape& shape, const attention::KvView& kv, int kv_head,
                                    const float* group_q) {
  const int d = shape.head_dim;
  const int64_t pages = (kv.length + kQuestPage - 1) / kQuestPage;
  std::vector<double> errors(static_cast<size_t>(pages), 0.0);
  for (int64_t p = 0; p < pages; ++p) {
    std::vector<double> extent(static_cast<size_t>(d), 0.0);
    for (int64_t t = p * kQuestPage; t < std::min(kv.length, (p + 1) * kQuestPage); ++t) {
      for (int i = 0; i < d; ++i) extent[static_cast<size_t>(i)] = std::max(extent[static_cast<size_t>(i)], std::fabs(double{kv.key(kv_head, t)[i]}));
    }
    for (int g = 0; g < shape.group_size(); ++g) {
      double sum = 0.0;
      for (int i = 0; i < d; ++i) sum += std::fabs(double{group_q[g * d + i]}) * extent[static_cast<size_t>(i)];
      errors[static_cast<size_t>(p)] = std::max(errors[static_cast<size_t>(p)], kBf16ProductError * sum);
    }
  }
  return errors;
}

// The GPU side: every layer's K/V pool of one sequence (pages shuffled, NaN where nothing was
// written), its host mirror in bf16-rounded f32, and the Quest bounds beside the pools.
class GpuSequence {
 public:
  GpuSequence(const model::ModelConfig& model, const attention::AttentionConfig& config, std::mt19937_64& rng)
      : model_(model), num_pages_(static_cast<int>(kCapacity / kKvPageSize) + 3) {
    table_.resize(static_cast<size_t>(num_pages_));
    std::iota(table_.begin(), table_.end(), 0);
    std::shuffle(table_.begin(), table_.end(), rng);
    d_table_ = to_device(table_);
    std::vector<const __nv_bfloat16*> k_pools;
    for (int layer = 0; layer < model.n_layers; ++layer) {
      test::PagedCacheHost host;
      host.n_kv_heads = model.n_kv_heads;
      host.head_dim = model.head_dim;
      host.k.assign(static_cast<size_t>(num_pages_) * model.n_kv_heads * kKvPageSize * model.head_dim, NAN);
      host.v = host.k;
      hosts_.push_back(std::move(host));
      k_pools_.emplace_back(hosts_.back().k.size());
      v_pools_.emplace_back(hosts_.back().v.size());
      k_pools.push_back(k_pools_.back().data());
    }
    bounds_ = QuestBounds(model, k_pools, num_pages_, num_pages_);
    bounds_.ensure_layers(config.decode);
  }

  const test::PagedCacheHost& host(int layer) const { return hosts_[static_cast<size_t>(layer)]; }
  const int32_t* pages() const { return table_.data(); }
  QuestBounds& bounds() { return bounds_; }
  const int32_t* device_pages() const { return d_table_.data(); }
  int num_pages() const { return num_pages_; }
  static constexpr int64_t kSequence = 0;  // the one sequence the bounds track here

  // A new sequence: the pools are poisoned again and the bounds forget everything.
  void restart() {
    for (test::PagedCacheHost& host : hosts_) {
      std::fill(host.k.begin(), host.k.end(), NAN);
      std::fill(host.v.begin(), host.v.end(), NAN);
    }
    bounds_.forget(kSequence);
  }

  // Copies the CPU cache's positions [from, to) of `layer` into the host mirror, rounded to bf16.
  void write(int layer, const attention::KvView& kv, int64_t from, int64_t to) {
    test::PagedCacheHost& host = hosts_[static_cast<size_t>(layer)];
    const int d = model_.head_dim;
    for (int h = 0; h < model_.n_kv_heads; ++h) {
      for (int64_t t = from; t < to; ++t) {
        const size_t dst = host.index(table_[static_cast<size_t>(t / kKvPageSize)], h, static_cast<int>(t % kKvPageSize));
        const float* key = kv.key(h, t);
        const float* value = kv.value(h, t);
        for (int i = 0; i < d; ++i) {
          host.k[dst + static_cast<size_t>(i)] = test::round_bf16(key[i]);
          host.v[dst + static_cast<size_t>(i)] = test::round_bf16(value[i]);
        }
      }
    }
  }

  void upload() {
    for (size_t layer = 0; layer < hosts_.size(); ++layer) {
      k_pools_[layer].upload(test::to_bf16(hosts_[layer].k));
      v_pools_[layer].upload(test::to_bf16(hosts_[layer].v));
    }
  }

  LayerKv layer_kv(int layer) {
    LayerKv kv = bf16_layer_kv(k_pools_[static_cast<size_t>(layer)].data(), v_pools_[static_cast<size_t>(layer)].data(),
                               d_table_.data(), num_pages_, num_pages_);
    kv.page_state = bounds_.bounds(layer);
    return kv;
  }

 private:
  model::ModelConfig model_;
  int num_pages_;
  std::vector<int32_t> table_;
  DeviceBuffer<int32_t> d_table_;
  std::vector<test::PagedCacheHost> hosts_;
  std::vector<DeviceBuffer<__nv_bfloat16>> k_pools_, v_pools_;
  QuestBounds bounds_;
};

std::vector<int32_t> download_set(const TokenSet& set, int kv_head) {
  int32_t count = 0;
  CUDA_CHECK(cudaMemcpy(&count, set.counts + kv_head, sizeof(count), cudaMemcpyDeviceToHost));
  std::vector<int32_t> positions(static_cast<size_t>(std::clamp(count, 0, set.capacity)));
  CUDA_CHECK(cudaMemcpy(positions.data(), set.indices + static_cast<size_t>(kv_head) * set.capacity,
                        positions.size() * sizeof(int32_t), cudaMemcpyDeviceToHost));
  if (count != static_cast<int32_t>(positions.size())) positions.push_back(-1);  // a count out of range fails below
  return positions;
}

struct Tally {
  int decisions = 0;       // (step, Quest layer, KV head)
  int differing = 0;       // of them, with a set other than the CPU's
  double worst_gap = 0.0;  // largest s(b) - s(a) of a swapped pair, relative to s(b)
  double worst_ratio = 0.0;  // largest (s(b) - s(a)) / (E(a) + E(b)): must stay <= 1
};

// One KV head's GPU set against the CPU's decision.
void check_decision(const std::vector<int32_t>& positions, const CpuDecision& cpu, int kv_len, int k_pages,
                             const std::string& what, Tally& tally) {
  std::set<int> gpu;
  for (int32_t t : positions) gpu.insert(t / kQuestPage);
  const int n_pages = (kv_len + kQuestPage - 1) / kQuestPage;
  std::vector<int> as_list(gpu.begin(), gpu.end());
  EXPECT_EQ(positions, test::pages_to_positions(as_list, kQuestPage, kv_len)) << what << ": not whole pages in order";
  EXPECT_EQ(static_cast<int>(gpu.size()), std::min(k_pages, n_pages)) << what;
  EXPECT_EQ(gpu.count(n_pages - 1), 1u) << what << ": the page being written is missing";
  ++tally.decisions;
  if (gpu == cpu.pages) return;
  ++tally.differing;
  double lowest_kept = INFINITY, highest_dropped = -INFINITY;
  for (int a : gpu) {
    if (cpu.pages.count(a) != 0 || a < 0 || a >= n_pages) continue;
    lowest_kept = std::min(lowest_kept, cpu.score[static_cast<size_t>(a)] + cpu.error[static_cast<size_t>(a)]);
    for (int b : cpu.pages) {
      if (gpu.count(b) != 0) continue;
      const double gap = cpu.score[static_cast<size_t>(b)] - cpu.score[static_cast<size_t>(a)];
      tally.worst_gap = std::max(tally.worst_gap, gap / std::fabs(cpu.score[static_cast<size_t>(b)]));
      tally.worst_ratio =
          std::max(tally.worst_ratio, gap / (cpu.error[static_cast<size_t>(a)] + cpu.error[static_cast<size_t>(b)]));
      highest_dropped = std::max(highest_dropped, cpu.score[static_cast<size_t>(b)] - cpu.error[static_cast<size_t>(b)]);
    }
  }
  EXPECT_GE(lowest_kept, highest_dropped) << what << ": the GPU kept a page that scores below a dropped one by more "
                                                     "than bf16 rounding explains";
}

// Rel L2 of the GPU's attention output of one layer against f64 attention over its sets.
double output_error(const std::vector<float>& got, const LayerStep& inputs, const test::PagedCacheHost& cache,
                    const int32_t* pages, const std::vector<std::vector<int32_t>>& sets, int kv_len,
                    const model::ModelConfig& model) {
  const int d = model.head_dim, group = model.n_heads / model.n_kv_heads;
  const std::vector<float> q = [&] {
    std::vector<float> rounded(inputs.q);
    for (float& x : rounded) x = test::round_bf16(x);
    return rounded;
  }();
  std::vector<int32_t> all(static_cast<size_t>(kv_len));
  std::iota(all.begin(), all.end(), 0);
  std::vector<double> want(got.size());
  for (int h = 0; h < model.n_heads; ++h) {
    const int kv_head = h / group;
    const std::vector<int32_t>& positions = sets.empty() ? all : sets[static_cast<size_t>(kv_head)];
    test::reference_attention_over(q.data() + static_cast<size_t>(h) * d, cache, pages, kv_head, positions,
                                   1.0 / std::sqrt(static_cast<double>(d)), want.data() + static_cast<size_t>(h) * d);
  }
  return test::relative_l2(got, want);
}

TEST(QuestModelSelection, GpuPagesEqualCpuUpToBf16NearTiesOnSmolLm2) {
  const std::string path = model_fixtures::model_path();
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "model absent: " << path;
  const std::unique_ptr<model::ModelSource> source = model::open_model_source(path);
  const tokenizer::Tokenizer tok = tokenizer::Tokenizer::load(path);
  const model::ModelConfig& model = source->config();
  const attention::AttentionConfig config = model_fixtures::small_quest_config();
  const attention::HeadShape shape{model.n_heads, model.n_kv_heads, model.head_dim};
  const int group = shape.group_size();
  const int k_pages = static_cast<int>(config.decode.budget / kQuestPage);

  runtime::BackendOptions options;
  options.capacity = kCapacity;
  options.prefill_chunk = 64;
  options.attention = config;
  const testing::ScopedCpuWeights f32("f32");  // the f32 CPU reference the bounds were set against
  backend::cpu::CpuTransformer cpu(*source, options);
  std::mt19937_64 rng(test::fresh_seed("quest model selection"));
  GpuSequence gpu(model, config, rng);
  CudaAttention attention(config, model, kCapacity, 64);
  QuestSelector selector(config.decode, model, kCapacity);

  std::vector<LayerStep> step_inputs(static_cast<size_t>(model.n_layers));
  std::vector<int64_t> written(static_cast<size_t>(model.n_layers), 0);
  cpu.attention().set_decode_observer([&](int layer, const float* q, int64_t pos, const attention::KvView& kv,
                                          const std::vector<attention::KeySet>& keys) {
    LayerStep& step = step_inputs[static_cast<size_t>(layer)];
    step.q.assign(q, q + shape.q_row_stride());
    step.decisions.clear();
    gpu.write(layer, kv, written[static_cast<size_t>(layer)], pos + 1);
    written[static_cast<size_t>(layer)] = pos + 1;
    if (cpu.attention().schedule().role(layer) != attention::LayerRole::Sparse) return;
    for (int kv_head = 0; kv_head < model.n_kv_heads; ++kv_head) {
      const float* group_q = q + int64_t{kv_head} * group * model.head_dim;
      step.decisions.push_back({attention::quest_page_scores(shape, kv, kv_head, group_q, kQuestPage),
                                rounding_errors(shape, kv, kv_head, group_q),
                                pages_of(keys[static_cast<size_t>(kv_head * group)].ranges)});
    }
  });

  DeviceBuffer<__nv_bfloat16> d_q(static_cast<size_t>(shape.q_row_stride()));
  DeviceBuffer<__nv_bfloat16> d_out(static_cast<size_t>(shape.q_row_stride()));
  DeviceBuffer<int32_t> d_len(1);
  const int32_t vocab = model.vocab_size;
  std::vector<float> logits(static_cast<size_t>(vocab));
  for (const std::string& prompt : model_fixtures::long_context_prompts()) {
    const std::vector<int32_t> ids = tok.encode(prompt, /*parse_special=*/true);
    cpu.truncate(0);
    gpu.restart();
    std::fill(written.begin(), written.end(), 0);
    cpu.forward(ids.data(), static_cast<int64_t>(ids.size()), runtime::LogitsFor::LastToken, logits.data());
    Tally tally;
    double worst_output = 0.0;
    for (int step = 0; step < kSteps; ++step) {
      const int32_t token = engine::argmax(logits.data(), vocab);
      const int64_t pos = cpu.cached_tokens();
      cpu.forward(&token, 1, runtime::LogitsFor::LastToken, logits.data());  // the observer fills step_inputs
      gpu.upload();
      if (step == 0) gpu.bounds().rebuild_stale(GpuSequence::kSequence, gpu.pages(), pos, nullptr);  // after a prefill
      const int kv_len = static_cast<int>(pos + 1);
      d_len.upload({kv_len});
      for (int layer = 0; layer < model.n_layers; ++layer) {
        const LayerStep& inputs = step_inputs[static_cast<size_t>(layer)];
        d_q.upload(test::to_bf16(inputs.q));
        gpu.bounds().append(layer, gpu.device_pages(), gpu.num_pages(), d_len.data(), static_cast<int>(kCapacity), 1,
                            nullptr);
        const LayerKv kv = gpu.layer_kv(layer);
        attention.decode(layer, d_q.data(), d_len.data(), static_cast<int>(kCapacity), 1, kv, d_out.data(), nullptr);
        std::vector<std::vector<int32_t>> sets;
        if (!inputs.decisions.empty()) {
          ASSERT_NE(kv.page_state, nullptr) << "layer " << layer << " decodes with Quest on the CPU only";
          // The cache as the Quest method sees it in this decode call (methods/decode_calls.h).
          const CudaDecodeCall call{layer, attention::LayerRole::Sparse, d_q.data(), d_len.data(),
                                    static_cast<int>(kCapacity), 1, kv, d_out.data()};
          const TokenSet set = selector.select(
              d_q.data(), QuestCache{paged_kv_of(model, call), static_cast<__nv_bfloat16*>(kv.page_state)}, nullptr);
          CUDA_CHECK(cudaDeviceSynchronize());
          for (int kv_head = 0; kv_head < model.n_kv_heads; ++kv_head) {
            sets.push_back(download_set(set, kv_head));
            check_decision(sets.back(), inputs.decisions[static_cast<size_t>(kv_head)], kv_len, k_pages,
                           "pos " + std::to_string(pos) + " layer " + std::to_string(layer) + " KV head " +
                               std::to_string(kv_head),
                           tally);
          }
        } else {
          ASSERT_EQ(kv.page_state, nullptr) << "layer " << layer << " decodes with Quest on the GPU only";
        }
        const double error =
            output_error(test::to_float(d_out.download()), inputs, gpu.host(layer), gpu.pages(), sets, kv_len, model);
        EXPECT_LT(error, kOutputTolerance) << "pos " << pos << " layer " << layer;
        worst_output = std::max(worst_output, error);
      }
      gpu.bounds().appended(GpuSequence::kSequence, pos + 1);
    }
    std::cout << "prompt of " << ids.size() << " tokens, " << kSteps << " steps: " << tally.differing << " of "
              << tally.decisions << " Quest KV-head page sets differ from the CPU's; swapped pages' CPU score gap "
              << "at most " << tally.worst_gap << " relative, " << tally.worst_ratio
              << " of the bf16 rounding bound (must be <= 1); worst output rel L2 " << worst_output << "\n";
  }
}

}  // namespace
}  // namespace deltainfer::cuda
