// ShardPlan: which heads, KV heads, MLP columns and vocabulary rows each tensor-parallel rank holds,
// the degrees a model allows, and that the sliced weights compute the full model's products: the
// ranks' column-parallel outputs side by side are the full output, and their row-parallel partial
// products sum to it.
#include "model/shard_plan.h"

#include <gtest/gtest.h>

#include <numeric>
#include <random>

#include "core/error.h"
#include "model/model_source.h"

namespace deltainfer::model {
namespace {

ModelConfig small_config() {
  ModelConfig c;
  c.name = "small";
  c.n_layers = 1;
  c.d_model = 16;
  c.n_heads = 8;
  c.n_kv_heads = 4;
  c.head_dim = 4;
  c.ffn_dim = 24;
  c.vocab_size = 10;  // 10 over 4 ranks: 3, 3, 2, 2
  c.context_length = 64;
  return c;
}

std::vector<float> random_values(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// y[m][n] = x[m][k] · W[n][k]^T, row-major like the backends' GEMMs.
std::vector<float> matmul(const std::vector<float>& x, const std::vector<float>& w, int64_t m, int64_t n, int64_t k) {
  std::vector<float> y(static_cast<size_t>(m * n), 0.0f);
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double sum = 0;
      for (int64_t p = 0; p < k; ++p) sum += double{x[static_cast<size_t>(i * k + p)]} * w[static_cast<size_t>(j * k + p)];
      y[static_cast<size_t>(i * n + j)] = static_cast<float>(sum);
    }
  }
  return y;
}

TEST(ShardPlan, OneRankHoldsEverything) {
  const ModelConfig c = small_config();
  const ShardPlan plan(c, 0, 1);
  EXPECT_EQ(plan.q_heads().begin, 0);
  EXPECT_EQ(plan.q_heads().count, 8);
  EXPECT_EQ(plan.kv_heads().count, 4);
  EXPECT_EQ(plan.ffn_columns().count, 24);
  EXPECT_EQ(plan.vocab_rows().count, 10);
  EXPECT_EQ(plan.vocab_stride(), 10);
  const ModelConfig local = plan.local_config();
  EXPECT_EQ(local.n_heads, c.n_heads);
  EXPECT_EQ(local.q_dim(), c.q_dim());
}

TEST(ShardPlan, RanksTileHeadsKvHeadsAndMlpColumns) {
  const ModelConfig c = small_config();
  for (int world : {2, 4}) {
    int64_t q_next = 0, kv_next = 0, ffn_next = 0;
    for (int rank = 0; rank < world; ++rank) {
      const ShardPlan plan(c, rank, world);
      EXPECT_EQ(plan.q_heads().begin, q_next);
      EXPECT_EQ(plan.kv_heads().begin, kv_next);
      EXPECT_EQ(plan.ffn_columns().begin, ffn_next);
      q_next = plan.q_heads().end();
      kv_next = plan.kv_heads().end();
      ffn_next = plan.ffn_columns().end();
      const ModelConfig local = plan.local_config();
      EXPECT_EQ(local.n_heads, c.n_heads / world);
      EXPECT_EQ(local.n_kv_heads, c.n_kv_heads / world);
      EXPECT_EQ(local.ffn_dim, c.ffn_dim / world);
      EXPECT_EQ(local.group_size(), c.group_size()) << "a rank's query heads share its own KV heads";
      EXPECT_EQ(local.vocab_size, c.vocab_size) << "the logits are gathered whole";
      EXPECT_EQ(local.d_model, c.d_model);
    }
    EXPECT_EQ(q_next, c.n_heads);
    EXPECT_EQ(kv_next, c.n_kv_heads);
    EXPECT_EQ(ffn_next, c.ffn_dim);
  }
}

TEST(ShardPlan, VocabularyRemainderGoesToTheFirstRanks) {
  const ModelConfig c = small_config();
  const int64_t expected_begin[] = {0, 3, 6, 8};
  const int64_t expected_count[] = {3, 3, 2, 2};
  for (int rank = 0; rank < 4; ++rank) {
    const ShardPlan plan(c, rank, 4);
    EXPECT_EQ(plan.vocab_rows().begin, expected_begin[rank]);
    EXPECT_EQ(plan.vocab_rows().count, expected_count[rank]);
    EXPECT_EQ(plan.vocab_stride(), 3);
    EXPECT_EQ(plan.vocab_rows_of(rank).begin, expected_begin[rank]);
  }
}

TEST(ShardPlan, RefusesDegreesThatSplitAKvHeadOrLeaveHeadsOver) {
  ModelConfig c = small_config();
  EXPECT_THROW(ShardPlan(c, 0, 8), InputError);  // 4 KV heads over 8 ranks
  EXPECT_THROW(ShardPlan(c, 0, 3), InputError);  // 8 heads over 3
  c.ffn_dim = 25;
  EXPECT_THROW(ShardPlan(c, 0, 2), InputError);  // an MLP that does not split evenly
  EXPECT_THROW(ShardPlan(small_config(), 2, 2), InputError);  // rank outside the group
}

TEST(ShardPlan, SmolLm2AllowsOnlyOneOrThreeAndSaysSo) {
  const ModelConfig c = open_synthetic_model_source("synthetic:smollm2-135m")->config();
  ASSERT_EQ(c.n_heads, 9);
  ASSERT_EQ(c.n_kv_heads, 3);
  EXPECT_EQ(ShardPlan::allowed_degrees(c), (std::vector<int>{1, 3}));
  try {
    ShardPlan(c, 0, 2);
    FAIL() << "TP 2 on 9 heads / 3 KV heads was accepted";
  } catch (const InputError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("--tensor-parallel 2"), std::string::npos) << message;
    EXPECT_NE(message.find("allows 1, 3"), std::string::npos) << message;
  }
}

TEST(ShardPlan, Llama8bSplitsUpToEight) {
  const ModelConfig c = open_synthetic_model_source("synthetic:llama3-8b")->config();
  EXPECT_EQ(ShardPlan::allowed_degrees(c), (std::vector<int>{1, 2, 4, 8}));
  const ShardPlan plan(c, 7, 8);
  EXPECT_EQ(plan.kv_heads().count, 1);
  EXPECT_EQ(plan.q_heads().count, 4);
  EXPECT_EQ(plan.vocab_rows().end(), c.vocab_size);
}

TEST(ShardPlan, ColumnParallelSlicesConcatenateToTheFullOutput) {
  const ModelConfig c = small_config();
  const int64_t m = 3, d = c.d_model;
  const std::vector<float> x = random_values(static_cast<size_t>(m * d), 1);
  struct Case {
    TensorRole role;
    int64_t out;
  };
  const Case cases[] = {{TensorRole::AttnQ, c.q_dim()}, {TensorRole::AttnK, c.kv_dim()},
                        {TensorRole::AttnV, c.kv_dim()}, {TensorRole::FfnGate, c.ffn_dim},
                        {TensorRole::FfnUp, c.ffn_dim}};
  for (const Case& test : cases) {
    const std::vector<float> w = random_values(static_cast<size_t>(test.out * d), 2);
    const std::vector<float> full = matmul(x, w, m, test.out, d);
    for (int world : {2, 4}) {
      std::vector<float> joined(full.size(), 0.0f);
      for (int rank = 0; rank < world; ++rank) {
        const ShardPlan plan(c, rank, world);
        const TensorSlice s = plan.slice(test.role, {test.out, d});
        ASSERT_EQ(s.cols.count, d);
        const std::vector<float> part = matmul(x, slice_matrix(w.data(), test.out, d, s), m, s.rows.count, d);
        for (int64_t i = 0; i < m; ++i) {
          for (int64_t j = 0; j < s.rows.count; ++j) {
            joined[static_cast<size_t>(i * test.out + s.rows.begin + j)] = part[static_cast<size_t>(i * s.rows.count + j)];
          }
        }
      }
      for (size_t i = 0; i < full.size(); ++i) {
        ASSERT_FLOAT_EQ(joined[i], full[i]) << "role " << static_cast<int>(test.role) << " world " << world;
      }
    }
  }
}

TEST(ShardPlan, QkvBiasSlicesFollowTheirHeads) {
  const ModelConfig c = small_config();
  std::vector<float> bias(static_cast<size_t>(c.kv_dim()));
  std::iota(bias.begin(), bias.end(), 0.0f);
  const ShardPlan plan(c, 1, 2);
  const TensorSlice s = plan.slice(TensorRole::AttnKBias, {c.kv_dim()});
  const std::vector<float> part = slice_matrix(bias.data(), c.kv_dim(), 1, s);
  ASSERT_EQ(part.size(), static_cast<size_t>(2 * c.head_dim));  // KV heads 2 and 3
  EXPECT_EQ(part.front(), static_cast<float>(2 * c.head_dim));
  EXPECT_EQ(part.back(), static_cast<float>(c.kv_dim() - 1));
  const TensorSlice q = plan.slice(TensorRole::AttnQBias, {c.q_dim()});
  EXPECT_EQ(q.rows.begin, 4 * c.head_dim);
  EXPECT_EQ(q.rows.count, 4 * c.head_dim);
}

TEST(ShardPlan, RowParallelPartialProductsSumToTheFullOutput) {
  const ModelConfig c = small_config();
  const int64_t m = 3, d = c.d_model;
  struct Case {
    TensorRole role;
    int64_t in;
  };
  for (const Case& test : {Case{TensorRole::AttnOutput, c.q_dim()}, Case{TensorRole::FfnDown, c.ffn_dim}}) {
    const std::vector<float> x = random_values(static_cast<size_t>(m * test.in), 3);
    const std::vector<float> w = random_values(static_cast<size_t>(d * test.in), 4);
    const std::vector<float> full = matmul(x, w, m, d, test.in);
    for (int world : {2, 4}) {
      std::vector<float> sum(full.size(), 0.0f);
      for (int rank = 0; rank < world; ++rank) {
        const ShardPlan plan(c, rank, world);
        const TensorSlice s = plan.slice(test.role, {d, test.in});
        ASSERT_EQ(s.rows.count, d);
        // The rank's input columns: its heads' attention output, or its MLP columns.
        const TensorSlice x_cols{{0, m}, s.cols};
        const std::vector<float> part =
            matmul(slice_matrix(x.data(), m, test.in, x_cols), slice_matrix(w.data(), d, test.in, s), m, d, s.cols.count);
        for (size_t i = 0; i < sum.size(); ++i) sum[i] += part[i];
      }
      for (size_t i = 0; i < full.size(); ++i) ASSERT_NEAR(sum[i], full[i], 1e-5f) << "world " << world;
    }
  }
}

TEST(ShardPlan, NormsAreWholeAndVocabularyTensorsSplitByRows) {
  const ModelConfig c = small_config();
  const ShardPlan plan(c, 3, 4);
  const TensorSlice norm = plan.slice(TensorRole::AttnNorm, {int64_t{c.d_model}});
  EXPECT_EQ(norm.rows.count, c.d_model);
  const TensorSlice embd = plan.slice(TensorRole::TokenEmbedding, {c.vocab_size, c.d_model});
  EXPECT_EQ(embd.rows.begin, 8);
  EXPECT_EQ(embd.rows.count, 2);
  EXPECT_EQ(embd.cols.count, c.d_model);
  EXPECT_THROW(slice_matrix(nullptr, 4, 4, TensorSlice{{2, 3}, {0, 4}}), Error);
}

}  // namespace
}  // namespace deltainfer::model
