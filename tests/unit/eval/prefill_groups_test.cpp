#include "eval/prefill_groups.h"

#include <gtest/gtest.h>

#include "eval/method_config.h"
#include "runtime/prefill_identity.h"

namespace deltainfer::eval {
namespace {

using Groups = std::vector<std::vector<size_t>>;

std::vector<attention::AttentionConfig> configs_of(const char* specs, int64_t context = 32768) {
  std::vector<attention::AttentionConfig> configs;
  for (const MethodSpec& spec : parse_method_specs(specs)) configs.push_back(method_config(spec, context));
  return configs;
}

TEST(PrefillGroups, DenseDecodesShareOnePrefill) {
  // The issue-14 table's dense-prefill methods: dense, DELTA, Quest and Tidal at three budgets.
  const auto configs = configs_of(
      "dense;delta:budget=1024;quest:budget=1024;tidal:budget=1024;delta:budget=4096;quest:budget=4096");
  EXPECT_EQ(prefill_groups(configs, true), (Groups{{0, 1, 2, 3, 4, 5}}));
}

TEST(PrefillGroups, SparsePrefillsStayApartUnlessAlike) {
  const auto configs = configs_of(
      "sliding;dense;sliding+delta;streaming:window=1024;sliding+delta:gamma=16;streaming:window=2048;"
      "sliding+delta:decode=delta,budget=1024;vslash+delta;quest");
  // sliding+delta with a DELTA decode reads the prompt as sliding+delta does; StreamingLLM
  // prefills with its own sink and window, like `sliding` (window 2048, sink 64) only at that
  // window; γ 16 is another prefill.
  EXPECT_EQ(prefill_groups(configs, true), (Groups{{0, 5}, {1, 8}, {2, 6}, {3}, {4}, {7}}));
}

TEST(PrefillGroups, WithoutSharingEveryMethodIsAlone) {
  const auto configs = configs_of("dense;delta;quest");
  EXPECT_EQ(prefill_groups(configs, false), (Groups{{0}, {1}, {2}}));
}

TEST(PrefillIdentity, SparseKnobsMatterOnlyForASparsePrefill) {
  attention::AttentionConfig dense, other_window;
  other_window.window = 128;
  other_window.sink = 4;
  EXPECT_TRUE(runtime::same_prefill(dense, other_window));  // a dense prefill reads neither
  attention::AttentionConfig sliding = dense;
  sliding.prefill.kind = attention::PrefillKind::Sliding;
  attention::AttentionConfig narrower = sliding;
  narrower.window = 128;
  EXPECT_FALSE(runtime::same_prefill(sliding, narrower));
  EXPECT_FALSE(runtime::same_prefill(dense, sliding));
  attention::AttentionConfig recompute = sliding;
  recompute.prefill.delta = true;
  attention::AttentionConfig delta = recompute;
  recompute.prefill.variant = attention::DeltaVariant::Recompute;
  EXPECT_FALSE(runtime::same_prefill(delta, recompute));
  attention::AttentionConfig no_tail = delta;
  no_tail.prefill.dense_tail = 0;
  EXPECT_FALSE(runtime::same_prefill(delta, no_tail));
  attention::AttentionConfig instrumented = dense;
  instrumented.instrument = true;
  EXPECT_FALSE(runtime::same_prefill(dense, instrumented));
}

}  // namespace
}  // namespace deltainfer::eval
