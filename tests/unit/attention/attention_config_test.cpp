#include "attention/attention_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "attention/layer_schedule.h"
#include "core/error.h"

namespace deltainfer::attention {
namespace {

using ::testing::HasSubstr;

std::string validation_error(const AttentionConfig& config, int n_layers = 0) {
  try {
    config.validate(n_layers);
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

TEST(AttentionConfig, DefaultsFollowMethods) {
  const AttentionConfig c;
  EXPECT_EQ(c.prefill.kind, PrefillKind::Dense);
  EXPECT_EQ(c.prefill.gamma, 64);
  EXPECT_EQ(c.window, 2048);
  EXPECT_EQ(c.sink, 64);
  EXPECT_EQ(c.prefill.estimate_queries, 64);
  EXPECT_EQ(c.prefill.block, 64);
  EXPECT_EQ(c.prefill.variant, DeltaVariant::Delta);
  EXPECT_EQ(c.decode.kind, DecodeKind::Dense);
  EXPECT_EQ(c.decode.recency, 128);
  EXPECT_EQ(c.decode.page, 16);
  EXPECT_EQ(c.decode.full_layers, 2);
  EXPECT_EQ(c.decode.aggregation, HeadAggregation::Max);
  EXPECT_FALSE(c.instrument);
  EXPECT_TRUE(is_dense(c));
  EXPECT_NO_THROW(c.validate(30));
}

TEST(AttentionConfig, ErrorsNameTheFlag) {
  AttentionConfig c;
  c.prefill.gamma = 0;
  EXPECT_THAT(validation_error(c), HasSubstr("--gamma"));
  c = {};
  c.window = 0;
  EXPECT_THAT(validation_error(c), HasSubstr("--window"));
  c = {};
  c.sink = -1;
  EXPECT_THAT(validation_error(c), HasSubstr("--sink"));
  c = {};
  c.prefill.delta = true;
  EXPECT_THAT(validation_error(c), HasSubstr("dense+delta"));
  c = {};
  c.decode.kind = DecodeKind::Delta;
  c.decode.page = 0;
  EXPECT_THAT(validation_error(c), HasSubstr("--page"));
  c.decode.page = 16;
  c.decode.budget = 8;
  EXPECT_THAT(validation_error(c), HasSubstr("--budget"));
  c.decode.budget = 64;  // 4 pages, but sink + 8 recency pages are forced
  EXPECT_THAT(validation_error(c), HasSubstr("--recency"));
  c.decode.budget = 1024;
  c.decode.delta_layers = {1};
  EXPECT_THAT(validation_error(c, 30), HasSubstr("--delta-layers"));
  c.decode.delta_layers = {30};
  EXPECT_THAT(validation_error(c, 30), HasSubstr("--delta-layers"));
  EXPECT_EQ(validation_error(c), "");  // layer checks wait for the model
  c.decode.delta_layers = {};
  c.decode.full_layers = 31;
  EXPECT_THAT(validation_error(c, 30), HasSubstr("--full-layers"));
}

TEST(AttentionConfig, TidalNeedsNoRoomForRecency) {
  AttentionConfig c;
  c.decode.kind = DecodeKind::Tidal;
  c.decode.budget = 32;
  EXPECT_NO_THROW(c.validate(30));
}

TEST(AttentionConfig, PrefillMethodNamesParse) {
  PrefillConfig p;
  ASSERT_TRUE(parse_prefill_method("sliding+delta", p));
  EXPECT_EQ(p.kind, PrefillKind::Sliding);
  EXPECT_TRUE(p.delta);
  ASSERT_TRUE(parse_prefill_method("vslash+Δ", p));
  EXPECT_EQ(p.kind, PrefillKind::VerticalSlash);
  EXPECT_TRUE(p.delta);
  ASSERT_TRUE(parse_prefill_method("dense", p));
  EXPECT_EQ(p.kind, PrefillKind::Dense);
  EXPECT_FALSE(p.delta);
  for (const char* bad : {"", "+delta", "sliding+", "sliding+deltas", "Sliding", "window"}) {
    EXPECT_FALSE(parse_prefill_method(bad, p)) << bad;
  }
  EXPECT_EQ(p.kind, PrefillKind::Dense);  // a failed parse leaves the config as it was
}

TEST(AttentionConfig, DescribeNamesThePolicies) {
  AttentionConfig c;
  c.prefill.kind = PrefillKind::Sliding;
  c.prefill.delta = true;
  c.decode.kind = DecodeKind::Delta;
  EXPECT_FALSE(is_dense(c));
  const std::string text = describe(c);
  EXPECT_THAT(text, HasSubstr("sliding+delta"));
  EXPECT_THAT(text, HasSubstr("decode delta"));
}

TEST(LayerSchedule, DeltaDefaultsToLayerFAndTheMiddle) {
  DecodeConfig d;
  d.kind = DecodeKind::Delta;
  EXPECT_EQ(resolved_delta_layers(d, 28), (std::vector<int>{2, 14}));
  const LayerSchedule schedule(d, 28);
  for (int layer = 0; layer < 28; ++layer) {
    const LayerRole want = layer < 2 ? LayerRole::Full
                           : (layer == 2 || layer == 14) ? LayerRole::DeltaSelect
                                                         : LayerRole::Sparse;
    EXPECT_EQ(schedule.role(layer), want) << "layer " << layer;
  }
}

TEST(LayerSchedule, LayersBelowTheFirstDeltaLayerStayFull) {
  DecodeConfig d;
  d.kind = DecodeKind::Delta;
  d.delta_layers = {5, 3, 5};
  EXPECT_EQ(resolved_delta_layers(d, 10), (std::vector<int>{3, 5}));
  const LayerSchedule schedule(d, 10);
  EXPECT_EQ(schedule.role(2), LayerRole::Full);
  EXPECT_EQ(schedule.role(3), LayerRole::DeltaSelect);
  EXPECT_EQ(schedule.role(4), LayerRole::Sparse);
  EXPECT_EQ(schedule.role(9), LayerRole::Sparse);
}

TEST(LayerSchedule, AllLayersFullWhenFCoversTheModel) {
  DecodeConfig d;
  d.kind = DecodeKind::Delta;
  d.full_layers = 6;
  const LayerSchedule schedule(d, 6);
  for (int layer = 0; layer < 6; ++layer) EXPECT_EQ(schedule.role(layer), LayerRole::Full);
}

TEST(LayerSchedule, QuestSkipsTheFirstTwoLayersStreamingNone) {
  DecodeConfig d;
  d.kind = DecodeKind::Quest;
  const LayerSchedule quest(d, 5);
  EXPECT_EQ(quest.role(1), LayerRole::Full);
  EXPECT_EQ(quest.role(2), LayerRole::Sparse);
  d.kind = DecodeKind::Streaming;
  EXPECT_EQ(LayerSchedule(d, 5).role(0), LayerRole::Sparse);
}

}  // namespace
}  // namespace deltainfer::attention
