// Device argmax against engine::argmax, and device sampling against the distribution that
// engine::Sampler's filtering defines (reference_sampling below): 200000 rows of the same logits
// are one draw each, so the empirical frequencies must match the filtered softmax (total
// variation < 0.01; the sampling noise is about 0.003) and never leave its support.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include "backend/cuda/device_buffer.h"
#include "backend/cuda/sampling.h"
#include "engine/sampler.h"
#include "gpu/gpu_test_support.h"

namespace deltainfer::cuda {
namespace {

// The probabilities engine::Sampler draws from: top-k, softmax at temperature, top-p nucleus.
std::vector<double> reference_distribution(const std::vector<float>& logits, float temperature, int top_k,
                                           float top_p) {
  std::vector<int> order(logits.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return logits[a] > logits[b]; });
  size_t keep = top_k > 0 ? std::min(order.size(), static_cast<size_t>(top_k)) : order.size();
  // Ties with the k-th logit are kept (engine::Sampler's rule), and ties with the nucleus's last.
  auto extend_over_ties = [&](size_t n) {
    while (n > 0 && n < order.size() && logits[order[n]] == logits[order[n - 1]]) ++n;
    return n;
  };
  keep = extend_over_ties(keep);
  std::vector<double> weights(keep);
  double total = 0.0;
  for (size_t i = 0; i < keep; ++i) {
    weights[i] = std::exp((static_cast<double>(logits[order[i]]) - logits[order[0]]) / temperature);
    total += weights[i];
  }
  if (top_p < 1.0f) {
    double cumulative = 0.0;
    size_t nucleus = 0;
    while (nucleus < keep) {
      cumulative += weights[nucleus++] / total;
      if (cumulative >= top_p) break;
    }
    keep = std::min(keep, extend_over_ties(nucleus));
  }
  std::vector<double> probs(logits.size(), 0.0);
  double kept = 0.0;
  for (size_t i = 0; i < keep; ++i) kept += weights[i];
  for (size_t i = 0; i < keep; ++i) probs[static_cast<size_t>(order[i])] = weights[i] / kept;
  return probs;
}

TEST(Sampling, ArgmaxMatchesCpuWithTies) {
  std::mt19937_64 rng(test::fresh_seed("argmax"));
  for (int vocab : {1, 1000, 151936}) {
    const int rows = 3;
    std::vector<float> logits = test::random_bf16_values(static_cast<size_t>(rows) * vocab, rng, 4.0f);
    if (vocab > 1) {  // a tie for the maximum in row 1: the lower index wins
      const float top = *std::max_element(logits.begin() + vocab, logits.begin() + 2 * vocab) + 1.0f;
      logits[static_cast<size_t>(vocab) + static_cast<size_t>(vocab) / 3] = top;
      logits[static_cast<size_t>(vocab) + static_cast<size_t>(vocab) / 2] = top;
    }
    auto d_logits = to_device(logits);
    DeviceBuffer<int32_t> d_out(rows);
    d_out.fill_bytes(0xFF);
    argmax(d_logits.data(), rows, vocab, d_out.data(), nullptr);
    const std::vector<int32_t> got = d_out.download();
    for (int r = 0; r < rows; ++r) {
      EXPECT_EQ(got[static_cast<size_t>(r)], engine::argmax(logits.data() + static_cast<size_t>(r) * vocab, vocab))
          << "vocab " << vocab << " row " << r;
    }
  }
}

struct SampleCase {
  float temperature;
  int top_k;
  float top_p;
};

TEST(Sampling, FrequenciesMatchTheFilteredSoftmax) {
  std::mt19937_64 rng(test::fresh_seed("sample distribution"));
  const int vocab = 64, rows = 200000;
  const std::vector<float> logits = test::random_bf16_values(vocab, rng, 2.0f);
  std::vector<float> tiled(static_cast<size_t>(rows) * vocab);
  for (int r = 0; r < rows; ++r) std::copy(logits.begin(), logits.end(), tiled.begin() + static_cast<size_t>(r) * vocab);
  auto d_logits = to_device(tiled);
  DeviceBuffer<int32_t> d_out(rows);
  const uint64_t seed = rng();
  for (const SampleCase& c : {SampleCase{1.0f, 0, 1.0f}, SampleCase{0.7f, 10, 1.0f}, SampleCase{1.3f, 0, 0.8f},
                              SampleCase{0.8f, 20, 0.9f}, SampleCase{1.0f, 1, 1.0f}}) {
    d_out.fill_bytes(0xFF);
    SamplingConfig config;
    config.temperature = c.temperature;
    config.top_k = c.top_k;
    config.top_p = c.top_p;
    config.seed = seed;
    sample(d_logits.data(), rows, vocab, config, d_out.data(), nullptr);
    const std::vector<int32_t> got = d_out.download();
    const std::vector<double> want = reference_distribution(logits, c.temperature, c.top_k, c.top_p);
    std::vector<double> freq(vocab, 0.0);
    for (int32_t token : got) {
      ASSERT_TRUE(token >= 0 && token < vocab) << "token " << token;
      ASSERT_GT(want[static_cast<size_t>(token)], 0.0) << "token " << token << " is outside the kept set";
      freq[static_cast<size_t>(token)] += 1.0 / rows;
    }
    double tv = 0.0;
    for (int i = 0; i < vocab; ++i) tv += 0.5 * std::fabs(freq[static_cast<size_t>(i)] - want[static_cast<size_t>(i)]);
    std::cout << "T=" << c.temperature << " top_k=" << c.top_k << " top_p=" << c.top_p << ": total variation " << tv
              << "\n";
    EXPECT_LT(tv, 0.01);
  }
}

TEST(Sampling, SeedAndOffsetPickTheDraw) {
  std::mt19937_64 rng(test::fresh_seed("sample determinism"));
  const int vocab = 151936, rows = 8;
  const std::vector<float> logits = test::random_bf16_values(static_cast<size_t>(rows) * vocab, rng, 3.0f);
  auto d_logits = to_device(logits);
  DeviceBuffer<int32_t> d_out(rows);
  SamplingConfig config;
  config.temperature = 0.9f;
  config.top_k = 50;
  config.top_p = 0.95f;
  config.seed = 1234;
  auto draw = [&](uint64_t offset) {
    config.philox_offset = offset;
    d_out.fill_bytes(0xFF);
    sample(d_logits.data(), rows, vocab, config, d_out.data(), nullptr);
    return d_out.download();
  };
  const std::vector<int32_t> first = draw(0);
  EXPECT_EQ(draw(0), first);
  int differences = 0;
  for (uint64_t offset = 1; offset <= 8; ++offset) {
    const std::vector<int32_t> other = draw(offset);
    for (int r = 0; r < rows; ++r) differences += other[static_cast<size_t>(r)] != first[static_cast<size_t>(r)];
  }
  EXPECT_GT(differences, 0);
  for (int r = 0; r < rows; ++r) {
    const std::vector<float> row(logits.begin() + static_cast<std::ptrdiff_t>(r) * vocab,
                                 logits.begin() + static_cast<std::ptrdiff_t>(r + 1) * vocab);
    const std::vector<double> want = reference_distribution(row, config.temperature, config.top_k, config.top_p);
    EXPECT_GT(want[static_cast<size_t>(first[static_cast<size_t>(r)])], 0.0) << "row " << r;
  }
}

TEST(Sampling, RefusesBadParameters) {
  SamplingConfig config;
  config.temperature = 0.0f;
  EXPECT_THROW(sample(nullptr, 1, 10, config, nullptr, nullptr), InputError);
  config.temperature = 1.0f;
  config.top_p = 0.0f;
  EXPECT_THROW(sample(nullptr, 1, 10, config, nullptr, nullptr), InputError);
}

}  // namespace
}  // namespace deltainfer::cuda
