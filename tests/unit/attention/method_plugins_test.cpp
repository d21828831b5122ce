// Every method in attention/methods/{prefill,decode}_methods.def is complete: its registry row has
// every hook the method-independent code calls, its CPU policy exists (and a decode method's layer
// roles cover the model); in CUDA builds, its CUDA implementation is registered too (the factory
// itself allocates device memory, so it runs in the gpu tests).
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "attention/layer_schedule.h"
#include "attention/method_registry.h"
#include "attention_test_support.h"
#include "core/error.h"

#ifdef DELTAINFER_CUDA_METHODS
#include "backend/cuda/methods/cuda_decode_method.h"
#include "backend/cuda/methods/cuda_prefill_method.h"
#endif

namespace deltainfer::attention {
namespace {

std::vector<DecodeKind> decode_kinds_of_the_def_file() {
  return {
#define DELTAINFER_DECODE_METHOD(kind, name) DecodeKind::kind,
#include "attention/methods/decode_methods.def"
#undef DELTAINFER_DECODE_METHOD
  };
}

std::vector<PrefillKind> prefill_kinds_of_the_def_file() {
  return {
#define DELTAINFER_PREFILL_METHOD(kind, name) PrefillKind::kind,
#include "attention/methods/prefill_methods.def"
#undef DELTAINFER_PREFILL_METHOD
  };
}

HeadShape shape_of(const model::ModelConfig& model) { return {model.n_heads, model.n_kv_heads, model.head_dim}; }

AttentionConfig config_for(DecodeKind kind) {
  AttentionConfig config;
  config.decode.kind = kind;
  return config;
}

TEST(MethodPlugins, EveryDecodeMethodHasEveryHookAndACpuPolicy) {
  const std::vector<DecodeKind> kinds = decode_kinds_of_the_def_file();
  ASSERT_EQ(decode_methods().size(), kinds.size());
  const model::ModelConfig model = testing::small_model(6);
  const HeadShape shape = shape_of(model);
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

TEST(MethodPlugins, EveryPrefillMethodHasEveryHookAndACpuPolicy) {
  const std::vector<PrefillKind> kinds = prefill_kinds_of_the_def_file();
  ASSERT_EQ(prefill_methods().size(), kinds.size());
  const model::ModelConfig model = testing::small_model(6);
  for (size_t i = 0; i < kinds.size(); ++i) {
    const PrefillMethodInfo& method = prefill_methods()[i];
    SCOPED_TRACE(method.name);
    EXPECT_EQ(method.kind, kinds[i]) << "the registry keeps the .def file's order";
    EXPECT_STRNE(method.description, "");
    ASSERT_NE(method.describe, nullptr);
    ASSERT_NE(method.kept_keys, nullptr);
    ASSERT_NE(method.cpu_policy, nullptr) << "a prefill method without a CPU policy";
    AttentionConfig config;
    config.prefill.kind = method.kind;
    EXPECT_NO_THROW(config.validate(model.n_layers)) << "the defaults are valid";
    const std::unique_ptr<CpuPrefillPolicy> policy = method.cpu_policy(config, shape_of(model));
    ASSERT_NE(policy, nullptr);
    EXPECT_GE(policy->query_block_rows(), 1);
    config.prefill.delta = true;  // Δ corrects exactly the methods that keep fewer than every key
    if (method.kept_keys(config)) {
      EXPECT_NO_THROW(config.validate(model.n_layers));
    } else {
      EXPECT_THROW(config.validate(model.n_layers), InputError);
    }
  }
}

#ifdef DELTAINFER_CUDA_METHODS
TEST(MethodPlugins, EveryPrefillMethodHasACudaImplementation) {
  ASSERT_EQ(cuda::cuda_prefill_methods().size(), prefill_methods().size());
  for (const PrefillMethodInfo& method : prefill_methods()) {
    SCOPED_TRACE(method.name);
    const cuda::CudaPrefillMethodInfo& implementation = cuda::cuda_prefill_method(method.kind);
    EXPECT_EQ(implementation.kind, method.kind);
    EXPECT_NE(implementation.create, nullptr) << "a prefill method without a CUDA implementation";
  }
}

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
