// --kv-dtype fp8 is taken by every method now that every kernel of theirs reads FP8 pages (the
// append writes them, the decode kernels read the codes, prefill reads them through the bf16
// staging pool); bf16 is taken by every method.
#include <gtest/gtest.h>

#include <string>

#include "attention/attention_config.h"
#include "backend/cuda/kv_dtype_support.h"
#include "core/error.h"

namespace deltainfer::cuda {
namespace {

TEST(KvDtypeSupport, EveryPrefillAndDecodeMethodRunsOnBf16AndFp8Pages) {
  const char* prefills[] = {"dense", "sliding", "sliding+delta", "vslash", "vslash+delta"};
#define DELTAINFER_DECODE_METHOD(kind, name) attention::DecodeKind::kind,
  const attention::DecodeKind decodes[] = {
#include "attention/methods/decode_methods.def"
  };
#undef DELTAINFER_DECODE_METHOD
  for (const char* prefill : prefills) {
    for (const attention::DecodeKind decode : decodes) {
      attention::AttentionConfig method;
      ASSERT_TRUE(attention::parse_prefill_method(prefill, method.prefill)) << prefill;
      method.decode.kind = decode;
      const std::string what = std::string(prefill) + " + decode " + attention::decode_kind_name(decode);
      EXPECT_NO_THROW(require_kv_dtype_kernels(method, KvDtype::Bf16)) << what;
      EXPECT_NO_THROW(require_kv_dtype_kernels(method, KvDtype::Fp8E4m3)) << what;
    }
  }
}

}  // namespace
}  // namespace deltainfer::cuda
