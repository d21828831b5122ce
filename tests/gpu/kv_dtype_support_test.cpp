// --kv-dtype fp8 is refused, naming the parts without FP8 kernels, for every method until its
// kernels read FP8 pages; bf16 is taken by every method.
#include <gtest/gtest.h>

#include <string>

#include "attention/attention_config.h"
#include "backend/cuda/kv_dtype_support.h"
#include "core/error.h"

namespace deltainfer::cuda {
namespace {

TEST(KvDtypeSupport, Bf16RunsEveryMethodAndFp8NamesWhatCannotReadIt) {
  attention::AttentionConfig method;
  ASSERT_TRUE(attention::parse_prefill_method("sliding+delta", method.prefill));
  method.decode.kind = attention::DecodeKind::Delta;
  EXPECT_NO_THROW(require_kv_dtype_kernels(method, KvDtype::Bf16));
  try {
    require_kv_dtype_kernels(method, KvDtype::Fp8E4m3);
    FAIL() << "a method whose kernels read only bf16 pages was accepted under fp8";
  } catch (const InputError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("--kv-dtype fp8"), std::string::npos) << message;
    EXPECT_NE(message.find("decode 'delta'"), std::string::npos) << message;
  }
}

}  // namespace
}  // namespace deltainfer::cuda
