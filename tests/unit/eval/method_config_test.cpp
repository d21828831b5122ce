#include "eval/method_config.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace deltainfer::eval {
namespace {

using attention::DecodeKind;
using attention::PrefillKind;

attention::AttentionConfig config_of(const char* spec, int64_t context = 4096) {
  return method_config(parse_method_specs(spec).at(0), context);
}

TEST(MethodConfig, MapsNamesToPolicies) {
  EXPECT_TRUE(attention::is_dense(config_of("dense")));
  const auto sliding = config_of("sliding:window=512,sink=4");
  EXPECT_EQ(sliding.prefill.kind, PrefillKind::Sliding);
  EXPECT_FALSE(sliding.prefill.delta);
  EXPECT_EQ(sliding.decode.kind, DecodeKind::Dense);
  EXPECT_EQ(sliding.window, 512);
  EXPECT_EQ(sliding.sink, 4);
  const auto corrected = config_of("sliding+delta:window=512,gamma=32");
  EXPECT_TRUE(corrected.prefill.delta);
  EXPECT_EQ(corrected.prefill.gamma, 32);
  EXPECT_EQ(config_of("vslash+delta").prefill.kind, PrefillKind::VerticalSlash);
  EXPECT_EQ(config_of("delta:budget=512").decode.kind, DecodeKind::Delta);
  EXPECT_EQ(config_of("delta:budget=512").decode.budget, 512);
  EXPECT_EQ(config_of("quest").decode.kind, DecodeKind::Quest);
  const auto streaming = config_of("streaming:window=256");
  EXPECT_EQ(streaming.prefill.kind, PrefillKind::Sliding);
  EXPECT_EQ(streaming.decode.kind, DecodeKind::Streaming);
  EXPECT_EQ(config_of("sliding+delta:decode=delta,budget=1024").decode.kind, DecodeKind::Delta);
  EXPECT_EQ(config_of("delta:delta_layers=2/8/15").decode.delta_layers, (std::vector<int>{2, 8, 15}));
  EXPECT_EQ(config_of("tidal:delta_layers=3").decode.delta_layers, (std::vector<int>{3}));
}

TEST(MethodConfig, ResolvesSharesOfTheContext) {
  EXPECT_EQ(config_of("delta:budget=25%", 8192).decode.budget, 2048);
  EXPECT_EQ(config_of("delta:budget=25%", 2000).decode.budget, 496);  // 500 rounded to pages of 16
  EXPECT_EQ(config_of("sliding:window=50%", 2048).window, 1024);
  const auto vslash = config_of("vslash+delta:vertical=5%,slash=20%", 4000);
  EXPECT_EQ(vslash.prefill.vertical, 200);
  EXPECT_EQ(vslash.prefill.slash, 800);
}

TEST(MethodConfig, RejectsUnknownNamesKeysAndValues) {
  for (const char* bad : {"dense2", "delta:budgett=5", "delta:budget=x", "delta:budget=0%", "sliding:variant=foo",
                          "delta:decode=fast", "delta:budget=8", "delta:delta_layers=2/", "delta:delta_layers=a/3",
                          "delta:delta_layers=2,8"}) {
    EXPECT_THROW(config_of(bad), InputError) << bad;
  }
}

TEST(AttendedShare, DenseAndUnlimitedMethodsAttendEverything) {
  for (const char* spec : {"dense", "sliding:window=8192", "delta:budget=8192", "quest:budget=8192"}) {
    const AttendedShare share = attended_share(config_of(spec), 4096, 30);
    EXPECT_DOUBLE_EQ(share.prefill, 1.0) << spec;
    EXPECT_DOUBLE_EQ(share.decode, 1.0) << spec;
  }
}

TEST(AttendedShare, CountsSlidingRowsDeltaRowsAndSparseLayers) {
  // N = 8, keep = sink 1 + window 1 = 2: rows attend 1,2,2,2,2,2,2,2 = 15 of 36 pairs.
  const AttendedShare sliding = attended_share(config_of("sliding:window=1,sink=1"), 8, 4);
  EXPECT_DOUBLE_EQ(sliding.prefill, 15.0 / 36.0);
  // Δ with γ = 4 adds the dense rows 0 and 4: 1 + 5 pairs; a dense tail of 2 rows adds 7 + 8.
  EXPECT_DOUBLE_EQ(attended_share(config_of("sliding+delta:window=1,sink=1,gamma=4,dense_tail=0"), 8, 4).prefill,
                   21.0 / 36.0);
  EXPECT_DOUBLE_EQ(attended_share(config_of("sliding+delta:window=1,sink=1,gamma=4,dense_tail=2"), 8, 4).prefill,
                   36.0 / 36.0);
  // DELTA on 4 layers, F = 2, Δ-layers {2}: layers 0-2 dense, layer 3 attends 32 of 1025.
  const AttendedShare delta = attended_share(config_of("delta:budget=32,recency=16"), 1024, 4);
  EXPECT_DOUBLE_EQ(delta.prefill, 1.0);
  EXPECT_DOUBLE_EQ(delta.decode, (3.0 * 1025 + 32) / (4.0 * 1025));
}

}  // namespace
}  // namespace deltainfer::eval
