// Memory planning is arithmetic on the config: checked against hand-computed sizes of a
// Llama-3-8B-shaped model, and a request that does not fit must be refused with the sizes named.
#include <gtest/gtest.h>

#include <string>

#include "backend/cuda/memory_plan.h"
#include "core/error.h"

namespace deltainfer::cuda {
namespace {

model::ModelConfig llama3_8b() {
  model::ModelConfig c;
  c.name = "llama3-8b-shape";
  c.n_layers = 32;
  c.d_model = 4096;
  c.n_heads = 32;
  c.n_kv_heads = 8;
  c.head_dim = 128;
  c.ffn_dim = 14336;
  c.vocab_size = 128256;
  return c;
}

constexpr size_t kGiB = size_t{1} << 30;

TEST(MemoryPlanTest, SizesWeightsAndKvCache) {
  MemoryRequest request;
  request.max_context = 131072;
  const MemoryPlan plan = plan_memory(llama3_8b(), request, 78 * kGiB);
  EXPECT_EQ(plan.kv_bytes_per_token, size_t{128} * 1024);  // 2 * 32 layers * 1024 * 2 bytes
  EXPECT_EQ(plan.kv_bytes, size_t{16} * kGiB);
  EXPECT_EQ(plan.pages_per_sequence, 2048);
  // 8.03e9 parameters in bf16.
  EXPECT_NEAR(static_cast<double>(plan.weight_bytes), 2 * 8.0303e9, 2e7);
  EXPECT_LT(plan.workspace_bytes, kGiB);
  EXPECT_EQ(plan.total_bytes, plan.weight_bytes + plan.kv_bytes + plan.workspace_bytes);
}

TEST(MemoryPlanTest, RefusesWhatDoesNotFitNamingTheSizes) {
  MemoryRequest request;
  request.max_context = 131072;
  request.max_batch = 4;
  try {
    plan_memory(llama3_8b(), request, 78 * kGiB);
    FAIL() << "4 x 128K tokens (64 GiB of KV) + 15 GiB of weights cannot fit in 78 GiB";
  } catch (const InputError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("llama3-8b-shape"), std::string::npos) << message;
    EXPECT_NE(message.find("KV cache 64.00 GiB"), std::string::npos) << message;
    EXPECT_NE(message.find("78.00 GiB is free"), std::string::npos) << message;
  }
  request.max_context = 0;
  EXPECT_THROW(plan_memory(llama3_8b(), request, 78 * kGiB), InputError);
}

TEST(MemoryPlanTest, QuestBoundsAreASixteenthOfTheirLayersKvAndCountAgainstTheFit) {
  MemoryRequest request;
  request.max_context = 131072;
  request.quest_layers = 30;  // --full-layers 2 of 32
  const MemoryPlan plan = plan_memory(llama3_8b(), request, 78 * kGiB);
  // Per layer and token: K and V 2 * 8 heads * 128 * 2 bytes = 4 KiB; min and max of 16 keys: 256 B.
  EXPECT_EQ(plan.quest_bytes_per_token, size_t{30} * 256);
  EXPECT_EQ(plan.quest_bytes, size_t{16} * kGiB / 32 * 30 / 16);
  EXPECT_EQ(plan.total_bytes, plan.weight_bytes + plan.kv_bytes + plan.quest_bytes + plan.workspace_bytes);

  // Half a GiB to spare without the bounds; with them (0.94 GiB) the request must be refused.
  const size_t free_bytes = plan.total_bytes - plan.quest_bytes + request.reserve_bytes + kGiB / 2;
  request.quest_layers = 0;
  EXPECT_NO_THROW(plan_memory(llama3_8b(), request, free_bytes));
  request.quest_layers = 30;
  try {
    plan_memory(llama3_8b(), request, free_bytes);
    FAIL() << "the Quest bounds must count against the free memory";
  } catch (const InputError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("Quest bounds 0.94 GiB"), std::string::npos) << message;
  }
  request.quest_layers = 33;
  EXPECT_THROW(plan_memory(llama3_8b(), request, 78 * kGiB), InputError);
}

}  // namespace
}  // namespace deltainfer::cuda
