// LogitsFor::TokenNlls on the CPU backend (SmolLM2, weights in their GGUF type, as eval runs them).
// The NLLs it returns are runtime::negative_log_likelihood of the logits AllTokens returns for the
// same rows, to the bit: the backend computes them from one output projection over the entry's
// rows, as AllTokens does. And eval::token_nlls, now fed through TokenNlls, returns what it
// returned when it took every row's logits to the host (support/token_nlls_reference.h).
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <utility>
#include <vector>

#include "backend/cpu/cpu_transformer.h"
#include "eval/perplexity.h"
#include "model/model_source.h"
#include "model_test_support.h"
#include "runtime/token_nll.h"
#include "support/token_nlls_reference.h"
#include "tokenizer/tokenizer.h"

namespace deltainfer {
namespace {

constexpr const char* kText =
    "The harbour town lies at the mouth of a slow green river. Every morning the fishing boats leave "
    "before sunrise and come back at noon, when the market opens on the stone quay. The baker sells "
    "rye bread with caraway seeds, and the children of the school on the hill buy sweet buns on their "
    "way down to the water. In spring the river floods the low meadows, and the farmers move their "
    "sheep to the upper fields behind the old mill, which has not ground corn for forty years.";

struct Smollm2 {
  Smollm2() : source(model::open_model_source(testing::smollm2_path())) {
    tokens = tokenizer::Tokenizer::load(testing::smollm2_path()).encode(kText, false);
    runtime::BackendOptions options;
    options.capacity = 256;
    options.prefill_chunk = 16;  // several chunks per call, and a last chunk shorter than the others
    model = std::make_unique<backend::cpu::CpuTransformer>(*source, options);
  }
  int32_t vocab() const { return source->config().vocab_size; }

  std::unique_ptr<model::ModelSource> source;
  std::vector<int32_t> tokens;
  std::unique_ptr<backend::cpu::CpuTransformer> model;
};

TEST(TokenNllsCpu, AreTheNllsOfTheAllTokensLogits) {
  DELTAINFER_REQUIRE_SMOLLM2();
  Smollm2 m;
  const size_t n = m.tokens.size();
  ASSERT_GT(n, 64u);
  const auto vocab = static_cast<size_t>(m.vocab());
  std::vector<float> logits(n * vocab);
  m.model->truncate(0);
  m.model->forward(m.tokens.data(), static_cast<int64_t>(n), runtime::LogitsFor::AllTokens, logits.data());

  std::vector<int32_t> targets(m.tokens.begin() + 1, m.tokens.end());
  targets.push_back(runtime::kNoTarget);  // the last token's successor is not in the text
  std::vector<double> nlls(n, 0.0);
  m.model->truncate(0);
  m.model->forward_token_nlls(m.tokens.data(), static_cast<int64_t>(n), targets.data(), nlls.data());
  EXPECT_EQ(m.model->cached_tokens(), static_cast<int64_t>(n));

  double sum = 0.0;
  for (size_t i = 0; i + 1 < n; ++i) {
    EXPECT_EQ(nlls[i], runtime::negative_log_likelihood(logits.data() + i * vocab, m.vocab(), targets[i])) << i;
    sum += nlls[i];
  }
  EXPECT_TRUE(std::isnan(nlls[n - 1]));
  // A language model on English prose: far below a uniform guess over the vocabulary (log 49152 = 10.8).
  EXPECT_LT(sum / static_cast<double>(n - 1), 0.5 * std::log(static_cast<double>(vocab)));
}

TEST(TokenNllsCpu, EvalTokenNllsIsUnchanged) {
  DELTAINFER_REQUIRE_SMOLLM2();
  Smollm2 m;
  for (const auto& [chunk, tail] : {std::pair<size_t, size_t>{40, 0}, {24, 6}}) {
    const std::vector<double> want = testing::token_nlls_from_logits(*m.model, m.tokens, chunk, tail);
    const std::vector<double> got =
        eval::token_nlls(*m.model, m.tokens, static_cast<int64_t>(chunk), static_cast<int64_t>(tail));
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(got[i], want[i]) << "chunk " << chunk << " tail " << tail << " " << i;
  }
}

}  // namespace
}  // namespace deltainfer
