// token_nll (backend/cuda/token_nll.h) against its host twin runtime::negative_log_likelihood on
// fresh random logits: ordinary rows, rows shifted by ±20000 (a naive exp overflows or vanishes),
// rows with ±3e38 entries, -inf entries (the target among them in one row), a row of -inf only,
// and targets outside the vocabulary; vocabularies 1 to 151,936 (Qwen2.5's).
//
// Tolerance, from the header's numerics: the device's expf is within 2 f32 ulp of the host's f64
// exp, so the sums, and with them log(s), differ by at most 2.4e-7; both sides then add m and
// subtract the target's logit in f64, each rounding by half an ulp of the operands. Bound:
// 1e-6 + 2^-50 (|m| + |target logit| + 16). Non-finite results must match in kind (NaN, +inf).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "backend/cuda/device_buffer.h"
#include "backend/cuda/token_nll.h"
#include "core/error.h"
#include "gpu/gpu_test_support.h"
#include "runtime/batch_plan.h"
#include "runtime/token_nll.h"

namespace deltainfer::cuda {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

enum class RowKind { Ordinary, ShiftedUp, ShiftedDown, Extreme, MaskedTarget, AllMasked, NoTarget, TargetPastVocab };
constexpr RowKind kRowKinds[] = {RowKind::Ordinary,     RowKind::ShiftedUp, RowKind::ShiftedDown,
                                 RowKind::Extreme,      RowKind::MaskedTarget, RowKind::AllMasked,
                                 RowKind::NoTarget,     RowKind::TargetPastVocab};

struct Case {
  std::vector<float> logits;  // [rows][vocab]
  std::vector<int32_t> targets;
};

// One row of each kind; every row but AllMasked also has about a tenth of its entries at -inf.
Case make_case(int vocab, std::mt19937_64& rng) {
  Case c;
  std::normal_distribution<float> normal(0.0f, 4.0f);
  std::uniform_int_distribution<int> index(0, vocab - 1);
  for (RowKind kind : kRowKinds) {
    std::vector<float> row(static_cast<size_t>(vocab));
    for (float& v : row) v = normal(rng);
    if (kind == RowKind::ShiftedUp || kind == RowKind::ShiftedDown) {
      const float shift = kind == RowKind::ShiftedUp ? 20000.0f : -20000.0f;
      for (float& v : row) v += shift;
    }
    if (vocab > 1 && kind != RowKind::AllMasked) {
      for (int i = 0; i < vocab / 10; ++i) row[static_cast<size_t>(index(rng))] = -kInf;
    }
    int32_t target = index(rng);
    if (kind == RowKind::Extreme && vocab > 2) {
      row[static_cast<size_t>(index(rng))] = 3.0e38f;
      row[static_cast<size_t>(index(rng))] = -3.0e38f;
    }
    if (kind == RowKind::MaskedTarget) row[static_cast<size_t>(target)] = -kInf;
    if (kind == RowKind::AllMasked) std::fill(row.begin(), row.end(), -kInf);
    if (kind == RowKind::NoTarget) target = runtime::kNoTarget;
    if (kind == RowKind::TargetPastVocab) target = vocab;
    if (kind != RowKind::MaskedTarget && kind != RowKind::AllMasked && target >= 0 && target < vocab &&
        row[static_cast<size_t>(target)] == -kInf) {
      row[static_cast<size_t>(target)] = normal(rng);  // only MaskedTarget scores a masked token
    }
    c.logits.insert(c.logits.end(), row.begin(), row.end());
    c.targets.push_back(target);
  }
  return c;
}

double host_nll(const float* row, int vocab, int32_t target) {
  if (target < 0 || target >= vocab) return std::numeric_limits<double>::quiet_NaN();
  return runtime::negative_log_likelihood(row, vocab, target);
}

double tolerance(const float* row, int vocab, int32_t target) {
  float m = -kInf;
  for (int v = 0; v < vocab; ++v) m = std::max(m, row[v]);
  return 1e-6 + std::ldexp(std::fabs(double{m}) + std::fabs(double{row[target]}) + 16.0, -50);
}

std::vector<double> device_nlls(const Case& c, int vocab) {
  const auto rows = static_cast<int>(c.targets.size());
  auto logits = to_device(c.logits);
  auto targets = to_device(c.targets);
  DeviceBuffer<double> nlls(static_cast<size_t>(rows));
  nlls.fill_bytes(0x7F);  // 1.4e306 in every slot: an unwritten row cannot pass
  token_nll(logits.data(), rows, vocab, targets.data(), nlls.data(), nullptr);
  CUDA_CHECK(cudaDeviceSynchronize());
  return nlls.download();
}

TEST(TokenNll, MatchesTheHostFormula) {
  std::mt19937_64 rng(test::fresh_seed("token_nll"));
  for (int vocab : {1, 2, 37, 1000, 49152, 151936}) {
    const Case c = make_case(vocab, rng);
    const std::vector<double> got = device_nlls(c, vocab);
    for (size_t r = 0; r < c.targets.size(); ++r) {
      const float* row = c.logits.data() + r * static_cast<size_t>(vocab);
      const double want = host_nll(row, vocab, c.targets[r]);
      const double g = got[r];
      if (std::isnan(want)) {
        EXPECT_TRUE(std::isnan(g)) << "vocab " << vocab << " row " << r << ": " << g;
      } else if (std::isinf(want)) {
        EXPECT_EQ(g, want) << "vocab " << vocab << " row " << r;
      } else {
        EXPECT_NEAR(g, want, tolerance(row, vocab, c.targets[r])) << "vocab " << vocab << " row " << r;
      }
    }
    // The kinds that must come out non-finite do (the reference could be wrong the same way).
    if (vocab > 1) EXPECT_EQ(got[4], std::numeric_limits<double>::infinity()) << "a masked target, vocab " << vocab;
    EXPECT_TRUE(std::isnan(got[5]) && std::isnan(got[6]) && std::isnan(got[7])) << "vocab " << vocab;
  }
}

TEST(TokenNll, RepeatsBitForBit) {
  std::mt19937_64 rng(test::fresh_seed("token_nll repeat"));
  const int vocab = 151936;
  const Case c = make_case(vocab, rng);
  const std::vector<double> first = device_nlls(c, vocab);
  const std::vector<double> second = device_nlls(c, vocab);
  EXPECT_EQ(std::memcmp(first.data(), second.data(), first.size() * sizeof(double)), 0);
}

TEST(TokenNll, RefusesBadShapesAndLaunchesNothingForNoRows) {
  EXPECT_THROW(token_nll(nullptr, -1, 10, nullptr, nullptr, nullptr), Error);
  EXPECT_THROW(token_nll(nullptr, 1, 0, nullptr, nullptr, nullptr), Error);
  EXPECT_NO_THROW(token_nll(nullptr, 0, 10, nullptr, nullptr, nullptr));
}

}  // namespace
}  // namespace deltainfer::cuda
