// Transformer::set_prefill_progress: the observer generate and bench draw a long prefill's bar from.
#include <gtest/gtest.h>

#include <utility>
#include <vector>

#include "fake_transformer.h"

namespace deltainfer {
namespace {

using Calls = std::vector<std::pair<int64_t, int64_t>>;

TEST(PrefillProgress, EachChunkOfALongPromptIsReportedAfterItRan) {
  testing::FakeTransformer fake(/*capacity=*/4096, /*pages=*/64, /*max_batch_tokens=*/100);
  runtime::Transformer& model = fake;  // the single-sequence forward() of the base
  Calls calls;
  model.set_prefill_progress([&](int64_t done, int64_t total) {
    EXPECT_EQ(model.cached_tokens(), done);  // reported once the chunk is in the cache
    calls.emplace_back(done, total);
  });
  const std::vector<int32_t> prompt(350, 'a');
  model.forward(prompt.data(), static_cast<int64_t>(prompt.size()), runtime::LogitsFor::LastToken, nullptr);
  EXPECT_EQ(calls, (Calls{{100, 350}, {200, 350}, {300, 350}, {350, 350}}));
}

TEST(PrefillProgress, OneChunkPromptsAndDecodeStepsAreNotReported) {
  testing::FakeTransformer fake(4096, 64, 100);
  runtime::Transformer& model = fake;
  Calls calls;
  model.set_prefill_progress([&](int64_t done, int64_t total) { calls.emplace_back(done, total); });
  const std::vector<int32_t> prompt(100, 'a');
  model.forward(prompt.data(), 100, runtime::LogitsFor::LastToken, nullptr);
  model.forward(prompt.data(), 1, runtime::LogitsFor::LastToken, nullptr);
  EXPECT_TRUE(calls.empty());
  model.set_prefill_progress({});
  model.forward(prompt.data(), 100, runtime::LogitsFor::LastToken, nullptr);  // cleared: no call
}

}  // namespace
}  // namespace deltainfer
