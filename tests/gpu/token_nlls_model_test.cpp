// LogitsFor::TokenNlls on the CUDA backend (SmolLM2): eval::token_nlls, which now asks the backend
// for per-token NLLs reduced on the device, against the NLLs the host computes from the same
// backend's AllTokens logits (support/token_nlls_reference.h), prefill chunks and decode steps.
//
// Both read the logits of the same launches (a step repeats bit for bit: batch_equivalence_test),
// so they differ only by the kernel's own error against the host formula: below 1e-6 for logits
// of this size (token_nll_test.cu). Bound 1e-5. The prompt is ~330 tokens in backend chunks of
// 300, so one entry's rows pass through logits_ in two blocks (256 + 44): a block offset error
// moves NLLs by order 1.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <string>
#include <utility>
#include <vector>

#include "backend/cuda/cuda_transformer.h"
#include "eval/perplexity.h"
#include "gpu/model_fixtures.h"
#include "model/model_source.h"
#include "support/token_nlls_reference.h"
#include "tokenizer/tokenizer.h"

namespace deltainfer {
namespace {

constexpr double kTolerance = 1e-5;

TEST(TokenNllsCuda, MatchTheNllsOfTheAllTokensLogits) {
  const std::string path = model_fixtures::model_path();
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "model absent: " << path;
  const auto source = model::open_model_source(path);
  const std::vector<int32_t> tokens = tokenizer::Tokenizer::load(path).encode(
      std::string(model_fixtures::kLongContext) + model_fixtures::kPrompts[1], false);
  ASSERT_GT(tokens.size(), 300u);
  runtime::BackendOptions options;
  options.capacity = 512;
  options.prefill_chunk = 300;
  const auto model = cuda::make_cuda_transformer(*source, options);

  // (eval's chunk, decode tail): the backend's chunks of 300 with 8 decode steps; calls of 64.
  for (const auto& [chunk, tail] : {std::pair<size_t, size_t>{1000, 8}, {64, 0}}) {
    const std::vector<double> want = testing::token_nlls_from_logits(*model, tokens, chunk, tail);
    const std::vector<double> got =
        eval::token_nlls(*model, tokens, static_cast<int64_t>(chunk), static_cast<int64_t>(tail));
    ASSERT_EQ(got.size(), want.size());
    double worst = 0.0, sum = 0.0;
    for (size_t i = 0; i < want.size(); ++i) {
      ASSERT_TRUE(std::isfinite(want[i])) << i;
      EXPECT_NEAR(got[i], want[i], kTolerance) << "chunk " << chunk << " tail " << tail << " token " << i + 1;
      worst = std::max(worst, std::fabs(got[i] - want[i]));
      sum += want[i];
    }
    std::cout << "[token nlls] chunk " << chunk << " tail " << tail << ": worst |device - host| " << worst
              << ", mean NLL " << sum / static_cast<double>(want.size()) << "\n";
    // English prose under a language model: far below a uniform guess (log 49152 = 10.8).
    EXPECT_LT(sum / static_cast<double>(want.size()), 0.5 * std::log(static_cast<double>(model->config().vocab_size)));
  }
}

}  // namespace
}  // namespace deltainfer
