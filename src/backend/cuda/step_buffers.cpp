#include "backend/cuda/step_buffers.h"

#include <algorithm>
#include <vector>

#include "core/error.h"

namespace deltainfer::cuda {

namespace {

constexpr int64_t kRunInts = sizeof(KvPageRun) / sizeof(int32_t);
static_assert(sizeof(KvPageRun) == 4 * sizeof(int32_t), "a page run is four int32 in the step's array");

// Rows of one slot at consecutive positions, then cut at page boundaries. Every run holds at
// least one row, so a step has at most rows() runs.
std::vector<KvPageRun> step_page_runs(const runtime::StepLayout& layout) {
  std::vector<KvPageRun> entries;
  for (int64_t r = 0; r < layout.rows(); ++r) {
    const auto row = static_cast<size_t>(r);
    const bool extends = !entries.empty() && layout.row_slot[row] == entries.back().seq &&
                         layout.positions[row] == entries.back().first_position + entries.back().count;
    if (extends) {
      ++entries.back().count;
    } else {
      entries.push_back({static_cast<int32_t>(r), layout.row_slot[row], layout.positions[row], 1});
    }
  }
  return kv_page_runs(entries);
}

}  // namespace

StepBuffers::StepBuffers(int64_t max_rows, int max_slots, int64_t page_stride, bool page_runs)
    : max_rows_(max_rows), max_slots_(max_slots), page_stride_(page_stride), page_runs_(page_runs) {
  const int64_t total = 3 * max_rows + max_slots + int64_t{max_slots} * page_stride + (page_runs ? kRunInts * max_rows : 0);
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
  runs_ = 0;
  if (!page_runs_) return;
  const std::vector<KvPageRun> runs = step_page_runs(layout);
  runs_ = static_cast<int>(runs.size());
  int32_t* at = host + runs_offset();
  for (const KvPageRun& run : runs) {
    *at++ = run.first_row;
    *at++ = run.seq;
    *at++ = run.first_position;
    *at++ = run.count;
  }
}

const KvPageRun* StepBuffers::page_runs() const {
  if (!page_runs_) throw_error("StepBuffers: page runs were not planned (a bf16 cache)");
  return reinterpret_cast<const KvPageRun*>(device_.data() + runs_offset());
}

void StepBuffers::upload(cudaStream_t stream) {
  const int64_t count = runs_offset() + kRunInts * runs_;  // everything stage() wrote
  CUDA_CHECK(cudaMemcpyAsync(device_.data(), staging_->data(), static_cast<size_t>(count) * sizeof(int32_t),
                             cudaMemcpyHostToDevice, stream));
}

}  // namespace deltainfer::cuda
