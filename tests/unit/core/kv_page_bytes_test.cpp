// Bytes of a KV pool page per dtype: bf16 values, or FP8 codes plus one f32 scale per KV head.
#include <gtest/gtest.h>

#include <string>

#include "core/kv_page.h"

namespace deltainfer {
namespace {

TEST(KvPageBytes, Fp8IsOneBytePerValuePlusAScalePerKvHead) {
  // Llama-3-8B: 8 KV heads of 128; 64 positions.
  EXPECT_EQ(kv_pool_page_bytes(KvDtype::Bf16, 8, 128), int64_t{64} * 8 * 128 * 2);
  EXPECT_EQ(kv_pool_page_bytes(KvDtype::Fp8E4m3, 8, 128), int64_t{64} * 8 * 128 + 8 * 4);
  // SmolLM2-135M: 3 KV heads of 64.
  EXPECT_EQ(kv_pool_page_bytes(KvDtype::Fp8E4m3, 3, 64), int64_t{64} * 3 * 64 + 3 * 4);
  EXPECT_EQ(std::string(kv_dtype_name(KvDtype::Fp8E4m3)), "fp8");
  EXPECT_EQ(std::string(kv_dtype_name(KvDtype::Bf16)), "bf16");
}

}  // namespace
}  // namespace deltainfer
