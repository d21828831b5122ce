#pragma once
// The eval model tests' engines: SmolLM2 on the CPU under the asked method, context and batch,
// counting how many were opened when `opened` is given.
#include "engine/engine.h"
#include "eval/runner.h"
#include "model_test_support.h"

namespace deltainfer::testing {

inline eval::EngineOpener smollm2_opener(int* opened = nullptr) {
  return [opened](const attention::AttentionConfig& attention, int64_t context, int max_batch) {
    if (opened != nullptr) ++*opened;
    engine::EngineConfig config;
    config.model_path = smollm2_path();
    config.attention = attention;
    config.context = context;
    config.max_batch = max_batch;
    return engine::Engine::open(config);
  };
}

}  // namespace deltainfer::testing
