#pragma once
// `deltainfer bench --batch B [--mixed-chunk N]`: decode throughput of B sequences of each length
// decoding together in one forward pass per step, against the floor set by the bytes that step
// must read (the weights once, plus every sequence's attended KV); optionally with an N-token
// prefill chunk of another sequence in every step (continuous batching's mixed step).
#include <cstdint>
#include <vector>

#include "core/kv_page.h"
#include "engine/engine.h"

namespace deltainfer::cli {

struct BatchBenchOptions {
  int batch = 1;
  int64_t mixed_chunk = 0;  // 0: decode steps only
  std::vector<int64_t> lengths;
  int64_t decode_tokens = 32;
  double peak_tbps = 0.0;  // 0: unknown, the floor columns read n/a
  KvDtype kv_dtype = KvDtype::Bf16;  // the cache's element type: its bytes enter the floor
};

int run_batch_bench(engine::Engine& engine, const attention::AttentionConfig& method, const BatchBenchOptions& o);

}  // namespace deltainfer::cli
