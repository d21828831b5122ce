// StreamingLLM's token set for sparse decode: the attention sink [0, sink) and the window
// [kv_len - window, kv_len), or the whole context when it is shorter than both together.
#include <cstdint>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/delta_decode.h"
#include "core/error.h"

namespace deltainfer::cuda {
namespace {

constexpr int kThreads = 256;

// grid: batch; block: kThreads.
__global__ void __launch_bounds__(kThreads)
    streaming_select_kernel(const int32_t* kv_lens, int sink, int window, TokenSet set) {
  const int seq = static_cast<int>(blockIdx.x);
  const int kv_len = kv_lens[seq];
  const bool whole = kv_len <= sink + window;
  const int count = whole ? kv_len : sink + window;
  int32_t* indices = set.indices + static_cast<size_t>(seq) * set.capacity;
  for (int i = static_cast<int>(threadIdx.x); i < set.capacity; i += kThreads) {
    int position = -1;
    if (i < count) position = whole || i < sink ? i : kv_len - window + (i - sink);
    indices[i] = position;
  }
  if (threadIdx.x == 0) set.counts[seq] = count;
}

}  // namespace

void streaming_select(const int32_t* kv_lens, int batch, int sink, int window, const TokenSet& set,
                      cudaStream_t stream) {
  if (sink < 0 || window < 0 || batch < 1 || set.sets_per_seq != 1 ||
      static_cast<int64_t>(sink) + window > set.capacity) {
    throw_input_error("streaming_select: sink {}, window {}, batch {}, token set capacity {} with {} sets per "
                      "sequence: need sink + window <= capacity and one set per sequence",
                      sink, window, batch, set.capacity, set.sets_per_seq);
  }
  if (kv_lens == nullptr || set.indices == nullptr || set.counts == nullptr) {
    throw_input_error("streaming_select: a required device pointer is null");
  }
  streaming_select_kernel<<<static_cast<unsigned>(batch), kThreads, 0, stream>>>(kv_lens, sink, window, set);
  CUDA_CHECK_LAUNCH();
}

}  // namespace deltainfer::cuda
