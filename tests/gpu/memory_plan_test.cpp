// Memory planning is arithmetic on the config: checked against hand-computed sizes of a
// Llama-3-8B-shaped model, and a request that does not fit must be refused with the sizes named.
// The attention policy's workspaces enter the plan as CudaAttention::device_bytes(), checked here
// against what its constructor really takes from the device.
#include <gtest/gtest.h>

#include <iostream>
#include <string>

#include "attention/attention_config.h"
#include "backend/cuda/cuda_attention.h"
#include "backend/cuda/memory_plan.h"
#include "backend/cuda/methods/cuda_decode_method.h"
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

// The InputError message of a request that must not fit in free_bytes (a test failure if it fits).
std::string refusal(const MemoryRequest& request, size_t free_bytes) {
  try {
    plan_memory(llama3_8b(), request, free_bytes);
  } catch (const InputError& e) {
    return e.what();
  }
  ADD_FAILURE() << "the request fits in " << free_bytes << " bytes but must be refused";
  return "";
}

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

// The logits buffer is as many rows as the transformer projects at once (256 prompt rows for
// AllTokens and TokenNlls, or every decode row), not max_batch rows: 155 MB more with Qwen2.5's
// vocabulary than the plan used to count. Only the logits depend on the vocabulary size.
TEST(MemoryPlanTest, CountsTheLogitsBufferTheTransformerAllocates) {
  for (const int max_batch : {1, 300}) {
    MemoryRequest request;
    request.max_context = 256;  // 300 sequences of it fit
    request.max_batch = max_batch;
    request.prefill_chunk = 2048;
    model::ModelConfig larger = llama3_8b();
    larger.vocab_size += 1000;
    const size_t extra = plan_memory(larger, request, 78 * kGiB).workspace_bytes -
                         plan_memory(llama3_8b(), request, 78 * kGiB).workspace_bytes;
    const int64_t rows = logit_buffer_rows(request.prefill_chunk, max_batch);
    EXPECT_EQ(rows, max_batch == 1 ? kLogitBlockRows : max_batch);
    EXPECT_EQ(extra, static_cast<size_t>(rows) * 1000 * sizeof(float)) << "max_batch " << max_batch;
  }
}

// A tensor-parallel rank's logits: its vocabulary part and the gathered parts of every rank too.
TEST(MemoryPlanTest, TensorParallelRanksCountTheirLogitParts) {
  MemoryRequest request;
  request.max_context = 256;
  request.prefill_chunk = 512;
  const size_t alone = plan_memory(llama3_8b(), request, 78 * kGiB).workspace_bytes;
  request.world = 4;
  request.rank_vocab_columns = 32064;  // ceil(128256 / 4)
  const size_t rank = plan_memory(llama3_8b(), request, 78 * kGiB).workspace_bytes;
  EXPECT_EQ(rank - alone, size_t{256} * 32064 * 5 * sizeof(float));
}

TEST(MemoryPlanTest, RefusesWhatDoesNotFitNamingTheSizes) {
  MemoryRequest request;
  request.max_context = 131072;
  request.max_batch = 4;
  // 4 x 128K tokens (64 GiB of KV) + 15 GiB of weights cannot fit in 78 GiB.
  const std::string message = refusal(request, 78 * kGiB);
  EXPECT_NE(message.find("llama3-8b-shape"), std::string::npos) << message;
  EXPECT_NE(message.find("KV cache 64.00 GiB"), std::string::npos) << message;
  EXPECT_NE(message.find("78.00 GiB is free"), std::string::npos) << message;
  request.max_context = 0;
  EXPECT_THROW(plan_memory(llama3_8b(), request, 78 * kGiB), InputError);
}

// The memory plan sizes a decode method's page state from what the method's row declares
// (page_state_bytes_per_page), naming no method: Quest's bounds, min and max of every 16 keys.
TEST(MemoryPlanTest, QuestBoundsAreASixteenthOfTheirLayersKvAndCountAgainstTheFit) {
  attention::DecodeConfig quest;
  quest.kind = attention::DecodeKind::Quest;
  quest.full_layers = 2;  // Sparse layers 2..31
  MemoryRequest request;
  request.max_context = 131072;
  request.page_state_bytes_per_page = page_state_bytes_per_page(quest, llama3_8b());
  EXPECT_EQ(page_state_bytes_per_page(attention::DecodeConfig{}, llama3_8b()), 0u) << "dense decode keeps none";
  const MemoryPlan plan = plan_memory(llama3_8b(), request, 78 * kGiB);
  // Per layer and token: K and V 2 * 8 heads * 128 * 2 bytes = 4 KiB; min and max of 16 keys: 256 B.
  EXPECT_EQ(plan.page_state_bytes_per_token, size_t{30} * 256);
  EXPECT_EQ(plan.page_state_bytes, size_t{16} * kGiB / 32 * 30 / 16);
  EXPECT_EQ(plan.total_bytes, plan.weight_bytes + plan.kv_bytes + plan.page_state_bytes + plan.workspace_bytes);

  // Half a GiB to spare without the bounds; with them (0.94 GiB) the request must be refused.
  const size_t free_bytes = plan.total_bytes - plan.page_state_bytes + request.reserve_bytes + kGiB / 2;
  const size_t bounds = request.page_state_bytes_per_page;
  request.page_state_bytes_per_page = 0;
  EXPECT_NO_THROW(plan_memory(llama3_8b(), request, free_bytes));
  request.page_state_bytes_per_page = bounds;
  const std::string message = refusal(request, free_bytes);  // the bounds count against the free memory
  EXPECT_NE(message.find("method page state 0.94 GiB"), std::string::npos) << message;
}

TEST(MemoryPlanTest, AttentionWorkspacesCountAgainstTheFit) {
  MemoryRequest request;
  request.max_context = 131072;
  const MemoryPlan without = plan_memory(llama3_8b(), request, 78 * kGiB);
  request.attention_bytes = kGiB / 4;
  const MemoryPlan with = plan_memory(llama3_8b(), request, 78 * kGiB);
  EXPECT_EQ(with.attention_bytes, kGiB / 4);
  EXPECT_EQ(with.total_bytes, without.total_bytes + kGiB / 4);

  const size_t free_bytes = without.total_bytes + request.reserve_bytes + kGiB / 8;
  request.attention_bytes = 0;
  EXPECT_NO_THROW(plan_memory(llama3_8b(), request, free_bytes));
  request.attention_bytes = kGiB / 4;
  const std::string message = refusal(request, free_bytes);  // the workspaces count against the free memory
  EXPECT_NE(message.find("attention workspaces 0.25 GiB"), std::string::npos) << message;
}

TEST(MemoryPlanTest, Fp8KvCacheIsHalfTheBytesPlusItsScales) {
  MemoryRequest request;
  request.max_context = int64_t{1} << 20;  // the million tokens
  request.kv_dtype = KvDtype::Fp8E4m3;
  const MemoryPlan plan = plan_memory(llama3_8b(), request, 139 * kGiB);
  // Per page: 2 * 32 layers * (64 * 8 * 128 codes + 8 f32 scales) = 4 MiB + 2 KiB.
  EXPECT_EQ(plan.kv_bytes_per_page, size_t{2} * 32 * (64 * 8 * 128 + 8 * 4));
  EXPECT_EQ(plan.kv_bytes, size_t{16384} * plan.kv_bytes_per_page);  // 64.03 GiB, where bf16 needs 128
  EXPECT_EQ(plan.kv_bytes_per_token, size_t{64} * 1024 + 32);
  // Prefill stages one sequence's pages of one layer in bf16: 16384 pages * 8 heads * 64 * 128 * 2 B
  // for K and for V (4 GiB), their identity page table, and a chunk's rotated K/V rows.
  EXPECT_EQ(plan.kv_staging_bytes, size_t{4} * kGiB + 16384 * 4 + size_t{2} * 2048 * 1024 * 2);
  EXPECT_EQ(plan.total_bytes, plan.weight_bytes + plan.kv_bytes + plan.workspace_bytes + plan.kv_staging_bytes);
  // The bf16 cache of the same million tokens does not fit in 139 GiB; the message names the dtype.
  request.kv_dtype = KvDtype::Bf16;
  const std::string message = refusal(request, 139 * kGiB);
  EXPECT_NE(message.find("KV cache 128.00 GiB (bf16, 128.00 KiB/token)"), std::string::npos) << message;
  request.kv_dtype = KvDtype::Fp8E4m3;
  request.max_batch = 2;
  const std::string fp8 = refusal(request, 139 * kGiB);
  EXPECT_NE(fp8.find("(fp8, 64.03 KiB/token)"), std::string::npos) << fp8;
  EXPECT_NE(fp8.find("+ FP8 staging 4.01 GiB"), std::string::npos) << fp8;  // 4 GiB of pages + table and rows
  request.kv_dtype = KvDtype::Bf16;
  request.max_batch = 1;
  request.max_context = 4096;
  EXPECT_EQ(plan_memory(llama3_8b(), request, 139 * kGiB).kv_staging_bytes, 0u);  // bf16 reads its pools
}

// cudaMalloc rounds large allocations up to 2 MiB pages and packs small ones together, so the
// free-memory drop of ~20 buffers may exceed their sum by that rounding, or fall short of it by
// small buffers packed into pages already reserved.
constexpr size_t kRounding = size_t{64} << 20;

struct Policy {
  const char* prefill;  // dense, sliding[+delta], vslash[+delta]
  attention::DecodeKind decode;
};

attention::AttentionConfig config_of(const Policy& policy) {
  attention::AttentionConfig config;
  EXPECT_TRUE(attention::parse_prefill_method(policy.prefill, config.prefill)) << policy.prefill;
  config.decode.kind = policy.decode;
  config.prefill.block = 64;
  return config;
}

TEST(MemoryPlanTest, AttentionDeviceBytesAreWhatItsConstructorAllocates) {
  // At 1M positions the vertical-slash estimator's score rows alone are 128 MiB each: a buffer
  // left out of device_bytes() shows well beyond the rounding.
  const int64_t capacity = int64_t{1} << 20, chunk = 4096;
  using attention::DecodeKind;
  for (const Policy& policy : {Policy{"vslash+delta", DecodeKind::Delta}, Policy{"sliding+delta", DecodeKind::Quest},
                               Policy{"dense", DecodeKind::Dense}}) {
    const std::string label = std::string(policy.prefill) + " / " + attention::decode_kind_name(policy.decode);
    const size_t before = free_device_bytes();
    CudaAttention attention(config_of(policy), llama3_8b(), capacity, chunk);
    const size_t taken = before - free_device_bytes();
    const size_t counted = attention.device_bytes();
    EXPECT_LE(taken, counted + kRounding) << label << ": counted " << counted;
    EXPECT_LE(counted, taken + kRounding) << label << ": taken " << taken;
    if (policy.decode == DecodeKind::Delta) {
      EXPECT_GT(counted, size_t{3} * (size_t{128} << 20)) << label;
    }
    std::cout << label << ": device_bytes " << counted << ", free memory drop " << taken << "\n";
  }
}

}  // namespace
}  // namespace deltainfer::cuda
