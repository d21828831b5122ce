// Host entry of varlen prefill attention: checks every chunk against its sequence (and Δ
// fusion's conditions), orders the chunks longest first, and launches the Hopper kernel (v3, or
// the FA3-style one on an explicit kSm90Ws) over up to kMaxVarlenChunks chunks at a time (one
// launch per chunk on devices without wgmma).
#include <algorithm>
#include <vector>

#include "backend/cuda/kernels/prefill_attention_launch.cuh"
#include "backend/cuda/prefill_attention.h"
#include "backend/cuda/sparse_prefill.h"
#include "core/error.h"

namespace deltainfer::cuda {
namespace {

static_assert(kMaxVarlenChunks == prefill::kMaxChunks, "the kernel's chunk table holds one launch");

constexpr int kQueryBlock = 128;  // rows per CTA of the Hopper kernel

// validate_kv() has checked that page-table rows hold kv.max_kv_len keys.
void validate_chunk(const VarlenPrefillArgs& a, const VarlenChunk& c, size_t index) {
  if (c.n_q < 0 || c.first_pos < 0 || c.q_row < 0 || c.page_row < 0 || c.page_row >= a.kv.batch || c.kv_len < 1 ||
      int64_t{c.first_pos} + c.n_q > c.kv_len || c.kv_len > a.kv.max_kv_len) {
    throw_input_error(
        "varlen prefill: chunk {} (rows {}+{}, positions from {}, kv_len {}, page row {}) does not fit "
        "its sequence (the cache holds {} page-table rows of up to {} keys)",
        index, c.q_row, c.n_q, c.first_pos, c.kv_len, c.page_row, a.kv.batch, a.kv.max_kv_len);
  }
  if (a.delta_dense != nullptr && (c.first_pos % a.gamma != 0 || c.delta_row < 0)) {
    throw_input_error("varlen prefill: chunk {} starts at position {}, not a multiple of Δ's gamma {} (or has "
                      "dense row {})",
                      index, c.first_pos, a.gamma, c.delta_row);
  }
}

// Δ fusion runs in the sparse kernels' epilogue over contiguous rows (sparse_prefill.h).
void validate_fusion(const VarlenPrefillArgs& a) {
  if (a.delta_dense == nullptr) return;
  if (a.window < 1 || a.q_pos != nullptr || (a.gamma != 16 && a.gamma != 32 && a.gamma != 64)) {
    throw_input_error(
        "varlen prefill: fused Δ correction needs a sliding window (window {}), contiguous queries and gamma "
        "16, 32 or 64 (gamma {})",
        a.window, a.gamma);
  }
}

}  // namespace

PrefillAttentionArgs varlen_chunk_args(const VarlenPrefillArgs& a, const VarlenChunk& c) {
  PrefillAttentionArgs args;
  args.q = a.q + static_cast<int64_t>(c.q_row) * a.n_heads * a.kv.head_dim;
  args.first_pos = c.first_pos;
  args.n_q = c.n_q;
  args.n_heads = a.n_heads;
  args.softmax_scale = a.softmax_scale;
  args.kv = sequence_kv(a.kv, c.page_row, c.kv_len);
  args.out = a.out + static_cast<int64_t>(c.q_row) * a.n_heads * a.kv.head_dim;
  args.lse = a.lse != nullptr ? a.lse + static_cast<int64_t>(c.q_row) * a.n_heads : nullptr;
  args.q_pos = a.q_pos != nullptr ? a.q_pos + c.q_row : nullptr;
  return args;
}

namespace {

void launch_each(const VarlenPrefillArgs& a, const std::vector<VarlenChunk>& chunks, cudaStream_t stream) {
  for (const VarlenChunk& c : chunks) {
    if (a.window > 0) {
      DeltaFusion fused;
      if (a.delta_dense != nullptr) {
        fused.dense_rows = a.delta_dense + static_cast<int64_t>(c.delta_row) * a.n_heads * a.kv.head_dim;
        fused.gamma = a.gamma;
      }
      sliding_prefill_attention(varlen_chunk_args(a, c), a.window, a.sink, stream, fused);
    } else {
      prefill_attention(varlen_chunk_args(a, c), stream);
    }
  }
}

// One Hopper launch over chunks[begin, end).
void launch_table(const VarlenPrefillArgs& a, const prefill::Params& base, const std::vector<VarlenChunk>& chunks,
                  size_t begin, size_t end, bool ws, cudaStream_t stream) {
  prefill::ChunkTable table{};
  table.page_table_stride = a.kv.page_table_stride;
  int blocks = 0;
  for (size_t i = begin; i < end; ++i) {
    const VarlenChunk& c = chunks[i];
    table.chunk[table.count++] = {c.q_row, c.n_q, c.first_pos, c.kv_len, c.page_row, blocks, c.delta_row};
    blocks += (c.n_q + kQueryBlock - 1) / kQueryBlock;
  }
  const auto launch = ws ? prefill::launch_sm90_ws_varlen : prefill::launch_sm90_varlen;
  const cudaError_t err = launch(base, table, blocks, a.kv.head_dim, a.kv.num_pages, stream);
  if (err != cudaSuccess) throw_error("varlen prefill: launch failed: {}", cudaGetErrorString(err));
}

}  // namespace

void varlen_prefill_attention(const VarlenPrefillArgs& a, const std::vector<VarlenChunk>& chunks,
                              cudaStream_t stream, PrefillKernel kernel) {
  if (kernel == PrefillKernel::kSm80) {
    throw_input_error("varlen prefill: the sm80 kernel has no varlen launch (kAuto runs it per chunk off Hopper)");
  }
  if (a.window < 0 || a.sink < 0) {
    throw_input_error("varlen prefill: window {} and sink {} must be >= 0", a.window, a.sink);
  }
  prefill::validate_kv("varlen prefill", a.kv);
  validate_fusion(a);
  std::vector<VarlenChunk> active;
  for (size_t i = 0; i < chunks.size(); ++i) {
    validate_chunk(a, chunks[i], i);
    if (chunks[i].n_q > 0) active.push_back(chunks[i]);
  }
  if (active.empty()) return;
  // Shapes and pointers are checked once, on the first chunk's view.
  prefill::validate(varlen_chunk_args(a, active.front()));
  const bool ws = resolved_prefill_kernel(kernel) == PrefillKernel::kSm90Ws;
  if (!prefill::device_has_wgmma()) {
    if (ws) throw_input_error("varlen prefill: the sm90 warp-specialized kernel needs an sm_90 device");
    launch_each(a, active, stream);
    return;
  }
  // Longest first: a chunk's last query block visits the most key tiles (compacted rows: their
  // last position is not first_pos + n_q - 1, their kv_len bounds it).
  const bool compacted = a.q_pos != nullptr;
  std::stable_sort(active.begin(), active.end(), [compacted](const VarlenChunk& x, const VarlenChunk& y) {
    return compacted ? x.kv_len > y.kv_len : x.first_pos + x.n_q > y.first_pos + y.n_q;
  });
  prefill::Params base = prefill::make_params(varlen_chunk_args(a, active.front()));
  base.q = a.q;
  base.out = a.out;
  base.lse = a.lse;
  base.page_table = a.kv.page_table;
  base.window = a.window;
  base.sink = a.sink;
  base.q_pos = a.q_pos;
  base.delta_dense = a.delta_dense;
  base.gamma = a.delta_dense != nullptr ? a.gamma : 0;
  for (size_t begin = 0; begin < active.size(); begin += kMaxVarlenChunks) {
    launch_table(a, base, active, begin, std::min(active.size(), begin + kMaxVarlenChunks), ws, stream);
  }
}

}  // namespace deltainfer::cuda
