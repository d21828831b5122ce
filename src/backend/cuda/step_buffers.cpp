#include "backend/cuda/step_buffers.h"

#include <algorithm>

#include "core/error.h"

namespace deltainfer::cuda {

StepBuffers::StepBuffers(int64_t max_rows, int max_slots, int64_t page_stride)
    : max_rows_(max_rows), max_slots_(max_slots), page_stride_(page_stride) {
  const int64_t total = 3 * max_rows + max_slots + int64_t{max_slots} * page_stride;
  device_ = DeviceBuffer<int32_t>(static_cast<size_t>(total));
  staging_ = std::make_unique<PinnedBuffer<int32_t>>(static_cast<size_t>(total));
}

void StepBuffers::stage(const runtime::StepLayout& layout) {
  if (layout.rows() > max_rows_ || layout.slots() > max_slots_ || layout.page_stride != page_stride_) {
    throw_error("a step of {} rows and {} slots (page stride {}) exceeds the planned {} rows and {} slots (stride {})",
                layout.rows(), layout.slots(), layout.page_stride, max_rows_, max_slots_, page_stride_);
  }
  rows_ = layout.rows();
  slots_ = layout.slots();
  int32_t* host = staging_->data();
  std::copy(layout.tokens.begin(), layout.tokens.end(), host);
  std::copy(layout.positions.begin(), layout.positions.end(), host + rows_);
  std::copy(layout.row_slot.begin(), layout.row_slot.end(), host + 2 * rows_);
  std::copy(layout.kv_lens.begin(), layout.kv_lens.end(), host + 3 * rows_);
  std::copy(layout.page_tables.begin(), layout.page_tables.end(), host + 3 * rows_ + slots_);
}

void StepBuffers::upload(cudaStream_t stream) {
  const int64_t count = 3 * rows_ + slots_ + int64_t{slots_} * page_stride_;
  CUDA_CHECK(cudaMemcpyAsync(device_.data(), staging_->data(), static_cast<size_t>(count) * sizeof(int32_t),
                             cudaMemcpyHostToDevice, stream));
}

}  // namespace deltainfer::cuda
