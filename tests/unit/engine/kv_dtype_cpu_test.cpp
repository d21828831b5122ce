// --kv-dtype fp8 is for the CUDA pools: the CPU backend refuses it by name before loading weights.
#include <gtest/gtest.h>

#include <string>

#include "core/error.h"
#include "engine/engine.h"

namespace deltainfer::engine {
namespace {

TEST(KvDtypeCpu, Fp8IsRefusedOnTheCpuBackendNamingTheFlag) {
  EngineConfig config;
  config.model_path = "synthetic:smollm2-135m";
  config.context = 256;
  config.kv_dtype = KvDtype::Fp8E4m3;
  try {
    (void)Engine::open(config);
    FAIL() << "the CPU backend opened an FP8 KV cache";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("--kv-dtype fp8"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace deltainfer::engine
