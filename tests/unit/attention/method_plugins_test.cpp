// Every decode method in attention/methods/decode_methods.def is complete: its registry row has
// every hook the method-independent code calls, its CPU policy exists and its layer roles cover the
// model; in CUDA builds, its CUDA implementation is registered too (the factory itself allocates
// device memory, so it runs in the gpu tests).
#include <gtest/gtest.h>

#include <vector>

#include "attention/layer_schedule.h"
#include "attention/method_registry.h"
#include "attention_test_support.h"

#ifdef DELTAINFER_CUDA_METHODS
#include "backend/cuda/methods/cuda_decode_method.h"
#endif

namespace deltainfer::attention {
namespace {

std::vector<DecodeKind> kinds_of_the_def_file() {
  return {
#define DELTAINFER_DECODE_METHOD(kind, name) DecodeKind::kind,
#include "attention/methods/decode_methods.def"
#undef DELTAINFER_DECODE_METHOD
  };
}

AttentionConfig config_for(DecodeKind kind) {
  AttentionConfig config;
  config.decode.kind = kind;
  return config;
}

TEST(MethodPlugins, EveryDecodeMethodHasEveryHookAndACpuPolicy) {
  const std::vector<DecodeKind> kinds = kinds_of_the_def_file();
  ASSERT_EQ(decode_methods().size(), kinds.size());
  const model::ModelConfig model = testing::small_model(6);
  const HeadShape shape{model.n_heads, model.n_kv_heads, model.head_dim};
  for (size_t i = 0; i < kinds.size(); ++i) {
    const DecodeMethodInfo& method = decode_methods()[i];
    SCOPED_TRACE(method.name);
    EXPECT_EQ(method.kind, kinds[i]) << "the registry keeps the .def file's order";
    EXPECT_STRNE(method.description, "");
    ASSERT_NE(method.validate, nullptr);
    ASSERT_NE(method.describe, nullptr);
    ASSERT_NE(method.layer_roles, nullptr);
    ASSERT_NE(method.sparse_tokens, nullptr);
    ASSERT_NE(method.cpu_policy, nullptr) << "a decode method without a CPU policy";
    const AttentionConfig config = config_for(method.kind);
    EXPECT_NO_THROW(config.validate(model.n_layers)) << "the defaults are valid";
    EXPECT_NE(method.cpu_policy(config, shape), nullptr);
    EXPECT_EQ(method.layer_roles(config.decode, model.n_layers).size(), static_cast<size_t>(model.n_layers));
    const LayerSchedule schedule(config.decode, model.n_layers);
    bool sparse = false;
    for (int layer = 0; layer < model.n_layers; ++layer) sparse |= schedule.role(layer) == LayerRole::Sparse;
    EXPECT_EQ(sparse, method.sparse_tokens(config) > 0) << "a method with Sparse layers says what they attend";
  }
}

#ifdef DELTAINFER_CUDA_METHODS
TEST(MethodPlugins, EveryDecodeMethodHasACudaImplementation) {
  ASSERT_EQ(cuda::cuda_decode_methods().size(), decode_methods().size());
  for (const DecodeMethodInfo& method : decode_methods()) {
    SCOPED_TRACE(method.name);
    const cuda::CudaDecodeMethodInfo& implementation = cuda::cuda_decode_method(method.kind);
    EXPECT_EQ(implementation.kind, method.kind);
    EXPECT_NE(implementation.create, nullptr) << "a decode method without a CUDA implementation";
  }
}
#endif

}  // namespace
}  // namespace deltainfer::attention
