// Decode policies through CpuAttention: one decode step over every layer of a small random model.
// Tolerances (f32): 1e-5 between two f32 computations, 1e-4 against the double reference.
#include <gtest/gtest.h>

#include <memory>

#include "attention/cpu_attention.h"
#include "attention/quest.h"
#include "attention/token_selection.h"
#include "core/error.h"
#include "attention_test_support.h"

namespace deltainfer::attention {
namespace {

using testing::RandomLayer;

constexpr int kLayers = 6;
constexpr float kSameTolerance = 1e-5f;
constexpr float kReferenceTolerance = 1e-4f;

struct RandomModel {
  std::vector<std::unique_ptr<RandomLayer>> layers;
  RandomModel(int64_t length, std::mt19937& rng) {
    for (int l = 0; l < kLayers; ++l) layers.push_back(std::make_unique<RandomLayer>(testing::small_model(kLayers), length, rng));
  }
};

// One decode step of the token at `pos` (its query is the layer's q row `pos`); outputs per layer.
std::vector<std::vector<float>> decode_step(CpuAttention& attention, const RandomModel& model, int64_t pos) {
  std::vector<std::vector<float>> out;
  for (int l = 0; l < kLayers; ++l) {
    const RandomLayer& layer = *model.layers[static_cast<size_t>(l)];
    out.emplace_back(96);
    attention.decode(l, layer.q_row(pos), pos, layer.kv(pos + 1), out.back().data());
  }
  return out;
}

std::vector<std::vector<float>> decode_step(const AttentionConfig& config, const RandomModel& model, int64_t pos) {
  CpuAttention attention(config, testing::small_model(kLayers), 2);
  return decode_step(attention, model, pos);
}

AttentionConfig delta_decode(int64_t budget, int64_t page, int64_t recency) {
  AttentionConfig config;
  config.decode.kind = DecodeKind::Delta;
  config.decode.budget = budget;
  config.decode.page = page;
  config.decode.recency = recency;
  return config;
}

float max_diff(const std::vector<std::vector<float>>& a, const std::vector<std::vector<float>>& b) {
  float worst = 0;
  for (size_t l = 0; l < a.size(); ++l) worst = std::max(worst, testing::max_abs_diff(a[l], b[l]));
  return worst;
}

int64_t tokens_in(const std::vector<KeyRange>& ranges) { return range_length(ranges); }

bool contains(const std::vector<KeyRange>& ranges, int64_t j) {
  for (const KeyRange& r : ranges) {
    if (j >= r.begin && j < r.end) return true;
  }
  return false;
}

TEST(DecodePolicy, BudgetCoveringTheContextIsDense) {
  std::mt19937 rng(testing::fresh_seed("DecodePolicy.LargeBudget"));
  const RandomModel model(300, rng);
  const auto dense = decode_step(AttentionConfig{}, model, 299);
  EXPECT_LE(max_diff(dense, decode_step(delta_decode(304, 16, 128), model, 299)), kSameTolerance);
  AttentionConfig tidal = delta_decode(300, 1, 0);
  tidal.decode.kind = DecodeKind::Tidal;
  EXPECT_LE(max_diff(dense, decode_step(tidal, model, 299)), kSameTolerance);
  AttentionConfig quest = delta_decode(320, 16, 0);
  quest.decode.kind = DecodeKind::Quest;
  EXPECT_LE(max_diff(dense, decode_step(quest, model, 299)), kSameTolerance);
}

TEST(DecodePolicy, AllLayersFullIsDense) {
  std::mt19937 rng(testing::fresh_seed("DecodePolicy.AllFull"));
  const RandomModel model(300, rng);
  AttentionConfig config = delta_decode(64, 16, 16);
  config.decode.full_layers = kLayers;
  EXPECT_LE(max_diff(decode_step(AttentionConfig{}, model, 299), decode_step(config, model, 299)), kSameTolerance);
}

TEST(DecodePolicy, DeltaSelectsBudgetPagesWithSinkAndRecency) {
  std::mt19937 rng(testing::fresh_seed("DecodePolicy.Selection"));
  const RandomModel model(400, rng);
  for (int64_t pos : {255, 300, 399}) {
    for (int64_t page : {1, 16}) {
      CpuAttention attention(delta_decode(128, page, 32), testing::small_model(kLayers), 2);
      decode_step(attention, model, pos);
      const std::vector<KeyRange>& selected = attention.selection();
      const int64_t length = pos + 1, missing_tail = (page - length % page) % page;
      EXPECT_EQ(tokens_in(selected), 128 - missing_tail) << "pos " << pos << " page " << page;
      for (int64_t j = 0; j < page; ++j) EXPECT_TRUE(contains(selected, j)) << "sink token " << j;
      const int64_t recent_from = (length + page - 1) / page * page - 32;
      for (int64_t j = std::max<int64_t>(0, recent_from); j < length; ++j) EXPECT_TRUE(contains(selected, j)) << "recent " << j;
      for (size_t r = 1; r < selected.size(); ++r) EXPECT_LT(selected[r - 1].end, selected[r].begin);
    }
  }
}

TEST(DecodePolicy, SparseLayersAttendExactlyTheSelectedSet) {
  std::mt19937 rng(testing::fresh_seed("DecodePolicy.SparseLayers"));
  const RandomModel model(300, rng);
  CpuAttention attention(delta_decode(96, 16, 32), testing::small_model(kLayers), 2);
  const auto out = decode_step(attention, model, 299);
  // Default Δ-layers of 6 layers: {2, 3}; layers 4 and 5 use the selection of layer 3.
  const std::vector<KeyRange> selected = attention.selection();
  for (int l : {4, 5}) {
    const RandomLayer& layer = *model.layers[static_cast<size_t>(l)];
    for (int head = 0; head < 6; ++head) {
      const auto want = testing::reference_attention(layer, head, layer.q_row(299) + head * 16, 300,
                                                     [&](int64_t j) { return contains(selected, j); });
      for (int c = 0; c < 16; ++c) {
        ASSERT_NEAR(out[static_cast<size_t>(l)][static_cast<size_t>(head * 16 + c)], want[static_cast<size_t>(c)],
                    kReferenceTolerance);
      }
    }
  }
  const auto dense = decode_step(AttentionConfig{}, model, 299);
  for (int l : {0, 1, 2, 3}) EXPECT_LE(testing::max_abs_diff(dense[static_cast<size_t>(l)], out[static_cast<size_t>(l)]), kSameTolerance);
}

TEST(DecodePolicy, SelectionKeepsTheHighestScoringPagesWithTiesToEarlierOnes) {
  std::vector<double> scores(64, 0.0);
  scores[20] = 0.5;   // page 5 of 4 tokens
  scores[41] = 0.25;  // page 10
  PageSelection selection{16, 4, 4, true, false};  // 4 pages: sink, recency (page 15), two best
  std::vector<KeyRange> kept = select_pages(scores, 64, selection);
  ASSERT_EQ(kept.size(), 4u);
  EXPECT_EQ(kept[1].begin, 20);
  EXPECT_EQ(kept[2].begin, 40);
  scores[41] = 0.0;  // now pages 1..14 except 5 tie at zero: the earliest (page 1) wins
  kept = select_pages(scores, 64, selection);
  ASSERT_EQ(kept.size(), 3u);
  EXPECT_EQ(kept[0].begin, 0);
  EXPECT_EQ(kept[0].end, 8);
}

TEST(DecodePolicy, HeadAggregationMaxAndSum) {
  const std::vector<float> p{0.5f, 0.25f, 0.25f, 0.125f, 0.75f, 0.125f};  // 2 heads x 3 tokens
  EXPECT_EQ(unified_token_scores(p.data(), 2, 3, HeadAggregation::Max), (std::vector<double>{0.5, 0.75, 0.25}));
  EXPECT_EQ(unified_token_scores(p.data(), 2, 3, HeadAggregation::Sum), (std::vector<double>{0.625, 1.0, 0.375}));
}

TEST(DecodePolicy, TidalHasNoRecencyWindow) {
  std::mt19937 rng(testing::fresh_seed("DecodePolicy.Tidal"));
  const RandomModel model(400, rng);
  AttentionConfig config = delta_decode(32, 1, 0);
  config.decode.kind = DecodeKind::Tidal;
  config.decode.recency = 128;  // ignored by Tidal
  CpuAttention attention(config, testing::small_model(kLayers), 2);
  decode_step(attention, model, 399);
  EXPECT_EQ(tokens_in(attention.selection()), 32);
  int64_t recent = 0;
  for (int64_t j = 272; j < 400; ++j) recent += contains(attention.selection(), j) ? 1 : 0;
  EXPECT_LT(recent, 32);  // a recency window of 128 would have taken the whole budget
}

TEST(DecodePolicy, StreamingAttendsExactlySinkAndWindow) {
  std::mt19937 rng(testing::fresh_seed("DecodePolicy.Streaming"));
  const RandomModel model(300, rng);
  AttentionConfig config;
  config.decode.kind = DecodeKind::Streaming;
  config.sink = 8;
  config.window = 50;
  config.instrument = true;
  CpuAttention attention(config, testing::small_model(kLayers), 2);
  const auto out = decode_step(attention, model, 299);
  for (int l = 0; l < kLayers; ++l) {
    const RandomLayer& layer = *model.layers[static_cast<size_t>(l)];
    const auto want = testing::reference_attention(layer, 2, layer.q_row(299) + 32, 300,
                                                   [](int64_t j) { return j < 8 || j > 299 - 50; });
    for (int c = 0; c < 16; ++c) ASSERT_NEAR(out[static_cast<size_t>(l)][static_cast<size_t>(32 + c)], want[static_cast<size_t>(c)], kReferenceTolerance);
    EXPECT_EQ(attention.fidelity().at(Phase::Decode, l).attended, 58 * 6);
  }
}

TEST(DecodePolicy, QuestPageScoreBoundsEveryKeyInThePage) {
  std::mt19937 rng(testing::fresh_seed("DecodePolicy.QuestBound"));
  const RandomLayer layer(testing::small_model(), 250, rng);
  const int64_t page = 16;
  for (int kv_head = 0; kv_head < 2; ++kv_head) {
    const float* group_q = layer.q_row(249) + kv_head * 3 * 16;
    const std::vector<double> scores = quest_page_scores(layer.shape, layer.kv(250), kv_head, group_q, page);
    ASSERT_EQ(scores.size(), 16u);
    for (int64_t j = 0; j < 250; ++j) {
      for (int g = 0; g < 3; ++g) {
        double dot = 0;
        for (int c = 0; c < 16; ++c) dot += double{group_q[g * 16 + c]} * layer.key(kv_head, j)[c];
        EXPECT_GE(scores[static_cast<size_t>(j / page)] + 1e-9, dot) << "key " << j;
      }
    }
  }
}

TEST(DecodePolicy, QuestAttendsItsTopPagesPerKvHeadAfterTheFullLayers) {
  std::mt19937 rng(testing::fresh_seed("DecodePolicy.Quest"));
  const RandomModel model(300, rng);
  AttentionConfig config = delta_decode(64, 16, 0);
  config.decode.kind = DecodeKind::Quest;
  config.instrument = true;
  CpuAttention attention(config, testing::small_model(kLayers), 2);
  const auto out = decode_step(attention, model, 299);
  const auto dense = decode_step(AttentionConfig{}, model, 299);
  for (int l = 0; l < 2; ++l) EXPECT_LE(testing::max_abs_diff(dense[static_cast<size_t>(l)], out[static_cast<size_t>(l)]), kSameTolerance);
  const RandomLayer& layer = *model.layers[4];
  const std::vector<double> scores = quest_page_scores(layer.shape, layer.kv(300), 1, layer.q_row(299) + 48, 16);
  const std::vector<KeyRange> pages = select_scored_pages(scores, 300, {64, 16, 0, false, true});
  EXPECT_TRUE(contains(pages, 299));  // the current page
  EXPECT_EQ(tokens_in(pages), 48 + 300 % 16);
  const auto want = testing::reference_attention(layer, 4, layer.q_row(299) + 64, 300,
                                                 [&](int64_t j) { return contains(pages, j); });
  for (int c = 0; c < 16; ++c) ASSERT_NEAR(out[4][static_cast<size_t>(64 + c)], want[static_cast<size_t>(c)], kReferenceTolerance);
  EXPECT_EQ(attention.fidelity().at(Phase::Decode, 4).attended, 6 * (48 + 300 % 16));
}

TEST(DecodePolicy, SparseLayerWithoutItsDeltaLayerIsAnError) {
  std::mt19937 rng(testing::fresh_seed("DecodePolicy.Order"));
  const RandomModel model(100, rng);
  CpuAttention attention(delta_decode(64, 16, 16), testing::small_model(kLayers), 2);
  std::vector<float> out(96);
  EXPECT_THROW(attention.decode(4, model.layers[4]->q_row(99), 99, model.layers[4]->kv(100), out.data()), Error);
}

}  // namespace
}  // namespace deltainfer::attention
