// The host memory a model needs, from its config and tensor table alone.
#include "model/host_memory_plan.h"

#include <gtest/gtest.h>

namespace deltainfer::model {
namespace {

TEST(ModelMemory, SmolLM2ShapesGiveItsPublishedParameterCount) {
  // SmolLM2-135M has 134,515,008 parameters (tied embeddings); its KV cache holds 30 layers x 3
  // KV heads x 64 dims for K and V per token.
  const auto source = open_synthetic_model_source("synthetic:smollm2-135m");
  const ModelMemory memory = model_memory(*source);
  EXPECT_EQ(memory.f32_weight_bytes, uint64_t{134515008} * 4);
  EXPECT_FALSE(memory.stored_weight_bytes.has_value());
  EXPECT_EQ(memory.kv_bytes_per_token, uint64_t{2 * 30 * 3 * 64 * 4});
  EXPECT_EQ(memory.kv_cache_bytes(4096), uint64_t{2 * 30 * 3 * 64 * 4} * 4096);
}

}  // namespace
}  // namespace deltainfer::model
