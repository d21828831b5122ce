// The host memory a model needs, from its config and tensor table alone.
#include "model/host_memory_plan.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "core/error.h"

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

constexpr uint64_t kGiB = uint64_t{1} << 30;

// A synthetic model's shapes, with the request the CPU path makes today: f32 weights.
struct PlanCase {
  std::unique_ptr<ModelSource> source;
  ModelMemory memory;
  HostMemoryRequest request;
};

PlanCase f32_case(const std::string& spec, int64_t context) {
  PlanCase c;
  c.source = open_synthetic_model_source(spec);
  c.memory = model_memory(*c.source);
  c.request.weight_bytes = c.memory.f32_weight_bytes;
  c.request.kv_positions = context;
  c.request.capacity = context;
  return c;
}

std::string plan_error(const PlanCase& c, uint64_t available) {
  try {
    plan_host_memory(c.source->config(), c.memory, c.request, available, "m.gguf");
  } catch (const InputError& e) {
    return e.what();
  }
  return "no error";
}

TEST(HostMemoryPlan, SumsWeightsKvActivationsAndReserve) {
  const PlanCase c = f32_case("synthetic:smollm2-135m", 4096);
  ASSERT_EQ(c.request.prefill_chunk, 512);
  const HostMemoryPlan plan = plan_host_memory(c.source->config(), c.memory, c.request, 64 * kGiB, "m.gguf");
  EXPECT_EQ(plan.weight_bytes, c.memory.f32_weight_bytes);
  EXPECT_EQ(plan.kv_bytes, c.memory.kv_bytes_per_token * 4096);
  // Per chunk token: 3 x 576 (x, normed, proj) + 2 x 576 (q, attn) + 2 x 192 (k, v) + 2 x 1536 (gate,
  // up) floats, plus 4096 scores; and one row of 49152 logits.
  EXPECT_EQ(plan.activation_bytes, (uint64_t{512} * (5 * 576 + 2 * 192 + 2 * 1536 + 4096) + 49152) * 4);
  EXPECT_EQ(plan.reserve_bytes, c.request.reserve_bytes);
  EXPECT_EQ(plan.total_bytes, plan.weight_bytes + plan.kv_bytes + plan.activation_bytes + plan.reserve_bytes);
  EXPECT_EQ(plan_error(c, plan.total_bytes), "no error");
  EXPECT_THAT(plan_error(c, plan.total_bytes - 1), ::testing::HasSubstr("does not fit"));
}

TEST(HostMemoryPlan, RefusesWhatDoesNotFitSayingHowMuchIsNeededAndAvailable) {
  // Llama-3.1-8B in f32: 29.92 GiB of weights, and 1 GiB of f32 KV cache at 4096 tokens.
  const std::string error = plan_error(f32_case("synthetic:llama3-8b", 4096), 24 * kGiB);
  EXPECT_THAT(error, ::testing::HasSubstr("m.gguf: does not fit in memory: weights 29.92 GiB + KV cache 1.00 GiB"));
  EXPECT_THAT(error, ::testing::HasSubstr("but 24.00 GiB is available"));
}

TEST(HostMemoryPlan, KvCountsThePoolsPositionsAndScoresOneSequence) {
  // Two sequences of 4096 positions share a pool of 8192: twice the KV, the same activations.
  PlanCase one = f32_case("synthetic:smollm2-135m", 4096);
  PlanCase two = f32_case("synthetic:smollm2-135m", 4096);
  two.request.kv_positions = 8192;
  const HostMemoryPlan a = plan_host_memory(one.source->config(), one.memory, one.request, 64 * kGiB, "m.gguf");
  const HostMemoryPlan b = plan_host_memory(two.source->config(), two.memory, two.request, 64 * kGiB, "m.gguf");
  EXPECT_EQ(b.kv_bytes, 2 * a.kv_bytes);
  EXPECT_EQ(b.activation_bytes, a.activation_bytes);
}

TEST(HostMemoryPlan, ARequestWithoutPositionsIsABug) {
  const PlanCase c = f32_case("synthetic:smollm2-135m", 0);
  try {
    plan_host_memory(c.source->config(), c.memory, c.request, 64 * kGiB, "m.gguf");
    ADD_FAILURE() << "no error";
  } catch (const InputError& e) {
    ADD_FAILURE() << "an InputError, which would blame the user: " << e.what();
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), ::testing::HasSubstr("kv 0, capacity 0"));
  }
}

TEST(HostMemoryPlan, ParsesMemAvailable) {
  const char* meminfo =
      "MemTotal:       24576000 kB\n"
      "MemFree:         1000000 kB\n"
      "MemAvailable:   22000000 kB\n"
      "Buffers:          100000 kB\n";
  EXPECT_EQ(parse_mem_available(meminfo), uint64_t{22000000} * 1024);
  EXPECT_EQ(parse_mem_available("MemTotal: 1 kB\n"), std::nullopt);
  EXPECT_EQ(parse_mem_available(""), std::nullopt);
  const std::optional<uint64_t> here = host_available_bytes();
  ASSERT_TRUE(here.has_value());  // the tests run on Linux
  EXPECT_GT(*here, uint64_t{0});
}

}  // namespace
}  // namespace deltainfer::model
