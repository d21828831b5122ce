#pragma once
// StepBuffers: the per-step index arrays a batched forward pass reads on the device (token id,
// position and slot of every row; KV length and page-table row of every slot), packed back to back
// in pinned memory and moved in one copy of just what the step uses. Where each array starts
// depends only on the step's row and slot counts, so a decode graph captured for one shape reads
// every replay's step from the same places. With `page_runs` (an FP8 cache), the step's rows are
// also cut into page runs for fp8_append_kv (kv_fp8_append.h): a decode step of n slots has n
// runs, so its graph's run count is fixed too.
#include <cuda_runtime_api.h>

#include <cstdint>
#include <memory>

#include "backend/cuda/cuda_handles.h"
#include "backend/cuda/device_buffer.h"
#include "backend/cuda/kv_fp8_append.h"
#include "runtime/step_layout.h"

namespace deltainfer::cuda {

class StepBuffers {
 public:
  StepBuffers() = default;
  StepBuffers(int64_t max_rows, int max_slots, int64_t page_stride, bool page_runs = false);

  // Host only: writes the layout into the pinned staging memory (throws Error when it exceeds the
  // sizes planned at construction); the accessors below then point at this step's arrays.
  void stage(const runtime::StepLayout& layout);
  // Enqueues the copy of what stage() wrote (capturable: the staging memory and the size are
  // fixed for a given row and slot count).
  void upload(cudaStream_t stream);

  const int32_t* tokens() const { return device_.data(); }
  const int32_t* positions() const { return device_.data() + rows_; }
  const int32_t* row_slot() const { return device_.data() + 2 * rows_; }
  const int32_t* kv_lens() const { return device_.data() + 3 * rows_; }
  const int32_t* page_table(int slot) const { return device_.data() + 3 * rows_ + slots_ + int64_t{slot} * page_stride_; }
  int64_t page_stride() const { return page_stride_; }
  // The staged step's page runs (page_runs only): rows of one slot at consecutive positions inside
  // one page; seq is the slot (the row of page_table(0)).
  const KvPageRun* page_runs() const;
  int page_run_count() const { return runs_; }

 private:
  // Where the staged step's page runs start: right after its page tables.
  int64_t runs_offset() const { return 3 * rows_ + slots_ + int64_t{slots_} * page_stride_; }

  int64_t max_rows_ = 0;
  int max_slots_ = 0;
  int64_t page_stride_ = 0;
  int64_t rows_ = 0;  // of the staged step
  int slots_ = 0;
  bool page_runs_ = false;
  int runs_ = 0;
  DeviceBuffer<int32_t> device_;
  std::unique_ptr<PinnedBuffer<int32_t>> staging_;
};

}  // namespace deltainfer::cuda
