#pragma once
// Token choice on the device, one row of logits per sequence: argmax (greedy), or temperature +
// top-k + top-p sampling with a counter-based generator (Philox: seed, row and offset pick the
// draw, so a step is reproducible and graph-capturable: advance `philox_offset` per step).
// Semantics follow engine::Sampler: top-k keeps the k largest logits (ties at the k-th value are
// all kept), top-p then keeps the smallest set of the most likely of those whose probability,
// renormalized over the top-k set, reaches p (ties with its least likely member all kept). Only launches on `stream`; no allocation.
#include <cuda_runtime_api.h>

#include <cstdint>

namespace deltainfer::cuda {

// out[r] = index of the largest logits[r][:] (lowest index on ties).
void argmax(const float* logits, int rows, int vocab, int32_t* out, cudaStream_t stream);

struct SamplingConfig {
  float temperature = 1.0f;  // > 0 (use argmax for 0)
  int top_k = 0;             // 0: no limit
  float top_p = 1.0f;        // in (0, 1]
  uint64_t seed = 0;
  uint64_t philox_offset = 0;  // advance once per generated token
  // If set, added to philox_offset at run time (e.g. the token's position), so that a captured
  // graph draws afresh at every replay.
  const int32_t* philox_offset_device = nullptr;
};

void sample(const float* logits, int rows, int vocab, const SamplingConfig& config, int32_t* out,
            cudaStream_t stream);

}  // namespace deltainfer::cuda
