#pragma once
// Top-k pages per row by score, for DELTA and Quest: one block per row finds the k-th largest
// score by radix select (4 passes of 8 bits over the row, which stays in L2), then writes the
// pages above it and the earliest ties in position order, expanded to token positions.
#include <cuda_runtime_api.h>

#include <cstdint>

#include "backend/cuda/delta_decode.h"

namespace deltainfer::cuda {

struct PageTopkArgs {
  const float* scores = nullptr;  // [rows][score_stride]; NaN counts as -inf
  int score_stride = 0;
  int rows = 0;                     // batch * set.sets_per_seq
  const int32_t* kv_lens = nullptr;  // [batch]; row r belongs to sequence r / set.sets_per_seq
  int page = 16;                    // tokens per page
  int k_pages = 0;
  TokenSet set;
};

// Enqueues the selection; no synchronization. Throws InputError when set.capacity < k_pages * page.
void page_topk(const PageTopkArgs& args, cudaStream_t stream);

}  // namespace deltainfer::cuda
