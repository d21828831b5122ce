// Delta correction kernels: one thread per (group of gamma rows, 16-byte column chunk) reads
// delta_r once and streams the group's rows in batches of 8 independent 16-byte loads, so the
// pass runs at copy bandwidth (N rows read + N rows written). In place is safe because a
// thread reads row r before it writes it and touches no other group's rows.
#include "backend/cuda/delta_correct.h"

#include "core/error.h"

namespace deltainfer::cuda {
namespace {

using bf16 = __nv_bfloat16;
constexpr int kThreads = 256;
constexpr int kBatch = 8;

struct Chunk {
  float v[8];
};

__device__ __forceinline__ Chunk load_chunk(const bf16* p) {
  const uint4 raw = *reinterpret_cast<const uint4*>(p);
  const __nv_bfloat162* h = reinterpret_cast<const __nv_bfloat162*>(&raw);
  Chunk c;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    c.v[2 * i] = __low2float(h[i]);
    c.v[2 * i + 1] = __high2float(h[i]);
  }
  return c;
}

__device__ __forceinline__ void store_chunk(bf16* p, const Chunk& c) {
  uint4 raw;
  __nv_bfloat162* h = reinterpret_cast<__nv_bfloat162*>(&raw);
#pragma unroll
  for (int i = 0; i < 4; ++i) h[i] = __floats2bfloat162_rn(c.v[2 * i], c.v[2 * i + 1]);
  *reinterpret_cast<uint4*>(p) = raw;
}

__device__ __forceinline__ Chunk delta_of(const bf16* dense, const bf16* sparse) {
  Chunk d = load_chunk(dense);
  const Chunk s = load_chunk(sparse);
#pragma unroll
  for (int e = 0; e < 8; ++e) d.v[e] -= s.v[e];
  return d;
}

// One thread's work: group k of the chunk (rows k * gamma .. k * gamma + gamma - 1), the 8
// columns from col.
__device__ __forceinline__ void correct_group(const DeltaCorrectArgs& a, int n_groups, int k, int64_t col) {
  const int64_t stride = a.row_elems;
  const int r = k * a.gamma;
  const int end = min(r + a.gamma, a.n_q);
  const bf16* dense = a.dense_rows + k * stride + col;
  const Chunk delta = delta_of(dense, a.sparse + r * stride + col);
  Chunk next = delta;  // interpolate: delta of the following strided row, if any
  if (a.mode == DeltaMode::kInterpolate && k + 1 < n_groups) {
    next = delta_of(dense + stride, a.sparse + (r + a.gamma) * stride + col);
  }
  store_chunk(a.out + r * stride + col, load_chunk(dense));
  for (int i0 = r + 1; i0 < end; i0 += kBatch) {
    Chunk rows[kBatch];
#pragma unroll
    for (int b = 0; b < kBatch; ++b) {
      if (i0 + b < end) rows[b] = load_chunk(a.sparse + (i0 + b) * stride + col);
    }
#pragma unroll
    for (int b = 0; b < kBatch; ++b) {
      const int i = i0 + b;
      if (i >= end) continue;
      if (a.mode != DeltaMode::kRecompute) {
        const float t =
            a.mode == DeltaMode::kInterpolate ? static_cast<float>(i - r) / a.gamma : 0.0f;
#pragma unroll
        for (int e = 0; e < 8; ++e) rows[b].v[e] += delta.v[e] + t * (next.v[e] - delta.v[e]);
      }
      store_chunk(a.out + i * stride + col, rows[b]);
    }
  }
}

__global__ void delta_correct_kernel(DeltaCorrectArgs a, int n_groups, int chunks) {
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (idx >= static_cast<int64_t>(n_groups) * chunks) return;
  correct_group(a, n_groups, static_cast<int>(idx / chunks), (idx % chunks) * 8);
}

// Varlen correction: the groups of up to kMaxVarlenChunks chunks; chunk c owns the launch's groups
// [group_begin, next chunk's group_begin) and its table entry travels in the parameters.
struct CorrectChunk {
  int q_row;
  int n_q;
  int first_pos;
  int delta_row;
  int n_groups;
  int group_begin;
};

struct CorrectTable {
  int count;
  CorrectChunk chunk[kMaxVarlenChunks];
};

__global__ void delta_correct_varlen_kernel(DeltaCorrectArgs base, int launch_groups, int chunks,
                                            const CorrectTable table) {
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (idx >= static_cast<int64_t>(launch_groups) * chunks) return;
  const int group = static_cast<int>(idx / chunks);
  int c = 0;
  while (c + 1 < table.count && group >= table.chunk[c + 1].group_begin) ++c;
  const CorrectChunk& ch = table.chunk[c];
  const int64_t stride = base.row_elems;
  DeltaCorrectArgs a = base;
  a.sparse = base.sparse + ch.q_row * stride;
  a.out = base.out + ch.q_row * stride;
  a.dense_rows = base.dense_rows + ch.delta_row * stride;
  a.n_q = ch.n_q;
  a.first_pos = ch.first_pos;
  correct_group(a, ch.n_groups, group - ch.group_begin, (idx % chunks) * 8);
}

__global__ void gather_rows_kernel(const bf16* rows, int count, int chunks, int gamma,
                                   bf16* strided) {
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (idx >= static_cast<int64_t>(count) * chunks) return;
  const int64_t k = idx / chunks;
  const int64_t col = (idx % chunks) * 8;
  const int64_t row_elems = static_cast<int64_t>(chunks) * 8;
  *reinterpret_cast<uint4*>(strided + k * row_elems + col) =
      *reinterpret_cast<const uint4*>(rows + k * gamma * row_elems + col);
}

// Varlen gather: the strided rows of up to kMaxVarlenChunks chunks. Chunk c's rows are the
// launch's rows [launch_row, next chunk's launch_row); its table entry travels in the parameters.
struct StridedChunk {
  int q_row;
  int first_pos;
  int delta_row;
  int launch_row;
};

struct StridedTable {
  int count;
  StridedChunk chunk[kMaxVarlenChunks];
};

__global__ void gather_varlen_kernel(const bf16* rows, int launch_rows, int chunks, int gamma,
                                     const StridedTable table, bf16* strided, int32_t* positions) {
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (idx >= static_cast<int64_t>(launch_rows) * chunks) return;
  const int row = static_cast<int>(idx / chunks);
  const int64_t col = (idx % chunks) * 8;
  const int64_t row_elems = static_cast<int64_t>(chunks) * 8;
  int c = 0;
  while (c + 1 < table.count && row >= table.chunk[c + 1].launch_row) ++c;
  const StridedChunk& ch = table.chunk[c];
  const int k = row - ch.launch_row;
  const int64_t dst = ch.delta_row + k;
  *reinterpret_cast<uint4*>(strided + dst * row_elems + col) =
      *reinterpret_cast<const uint4*>(rows + (static_cast<int64_t>(ch.q_row) + int64_t{k} * gamma) * row_elems + col);
  if (col == 0) positions[dst] = ch.first_pos + k * gamma;
}

__global__ void positions_kernel(int count, int first_pos, int gamma, int32_t* positions) {
  const int k = static_cast<int>(blockIdx.x) * kThreads + static_cast<int>(threadIdx.x);
  if (k < count) positions[k] = first_pos + k * gamma;
}

unsigned blocks_for(int64_t threads) {
  return static_cast<unsigned>((threads + kThreads - 1) / kThreads);
}

void check_launch(const char* what) {
  const cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) throw_error("{}: launch failed: {}", what, cudaGetErrorString(err));
}

void check_rows(int n_q, int row_elems, int gamma, const char* what) {
  if (n_q < 0 || gamma < 1 || row_elems <= 0 || row_elems % 8 != 0) {
    throw_input_error("{}: n_q {} must be >= 0, gamma {} >= 1, row_elems {} a positive multiple "
                      "of 8",
                      what, n_q, gamma, row_elems);
  }
}

}  // namespace

void delta_correct(const DeltaCorrectArgs& args, cudaStream_t stream) {
  constexpr const char* kWhat = "delta correction";
  check_rows(args.n_q, args.row_elems, args.gamma, kWhat);
  if (args.first_pos < 0 || args.first_pos % args.gamma != 0) {
    throw_input_error("{}: the chunk must start at a multiple of gamma {} (first_pos {})", kWhat,
                      args.gamma, args.first_pos);
  }
  if (args.sparse == nullptr || args.dense_rows == nullptr || args.out == nullptr) {
    throw_input_error("{}: null pointer", kWhat);
  }
  if (args.mode == DeltaMode::kInterpolate && args.out == args.sparse) {
    throw_input_error("{}: interpolate reads later rows, so it cannot run in place", kWhat);
  }
  if (args.n_q == 0) return;
  const int groups = strided_row_count(args.n_q, args.gamma);
  const int chunks = args.row_elems / 8;
  delta_correct_kernel<<<blocks_for(int64_t{groups} * chunks), kThreads, 0, stream>>>(
      args, groups, chunks);
  check_launch(kWhat);
}

void delta_correct_varlen(const DeltaCorrectArgs& base, const std::vector<VarlenChunk>& chunks,
                          cudaStream_t stream) {
  constexpr const char* kWhat = "delta correction (varlen)";
  check_rows(0, base.row_elems, base.gamma, kWhat);
  if (base.sparse == nullptr || base.dense_rows == nullptr || base.out == nullptr) {
    throw_input_error("{}: null pointer", kWhat);
  }
  if (base.mode == DeltaMode::kInterpolate && base.out == base.sparse) {
    throw_input_error("{}: interpolate reads later rows, so it cannot run in place", kWhat);
  }
  for (const VarlenChunk& c : chunks) {
    check_rows(c.n_q, base.row_elems, base.gamma, kWhat);
    if (c.q_row < 0 || c.delta_row < 0 || c.first_pos < 0 || c.first_pos % base.gamma != 0) {
      throw_input_error("{}: chunk at row {} (dense row {}) starts at position {}, not a multiple of gamma {}",
                        kWhat, c.q_row, c.delta_row, c.first_pos, base.gamma);
    }
  }
  CorrectTable table{};
  int launch_groups = 0;
  const int chunks_per_row = base.row_elems / 8;
  auto launch = [&] {
    if (launch_groups == 0) return;
    delta_correct_varlen_kernel<<<blocks_for(int64_t{launch_groups} * chunks_per_row), kThreads, 0, stream>>>(
        base, launch_groups, chunks_per_row, table);
    check_launch(kWhat);
    table.count = 0;
    launch_groups = 0;
  };
  for (const VarlenChunk& c : chunks) {
    if (c.n_q == 0) continue;
    if (table.count == kMaxVarlenChunks) launch();
    const int groups = strided_row_count(c.n_q, base.gamma);
    table.chunk[table.count++] = {c.q_row, c.n_q, c.first_pos, c.delta_row, groups, launch_groups};
    launch_groups += groups;
  }
  launch();
}

void gather_strided_rows(const __nv_bfloat16* rows, int n_q, int row_elems, int gamma,
                         __nv_bfloat16* strided, cudaStream_t stream) {
  constexpr const char* kWhat = "gather strided rows";
  check_rows(n_q, row_elems, gamma, kWhat);
  if (n_q == 0) return;
  const int count = strided_row_count(n_q, gamma);
  gather_rows_kernel<<<blocks_for(int64_t{count} * (row_elems / 8)), kThreads, 0, stream>>>(
      rows, count, row_elems / 8, gamma, strided);
  check_launch(kWhat);
}

void strided_positions(int n_q, int first_pos, int gamma, int32_t* positions,
                       cudaStream_t stream) {
  constexpr const char* kWhat = "strided positions";
  check_rows(n_q, 8, gamma, kWhat);
  if (n_q == 0) return;
  const int count = strided_row_count(n_q, gamma);
  positions_kernel<<<blocks_for(count), kThreads, 0, stream>>>(count, first_pos, gamma,
                                                               positions);
  check_launch(kWhat);
}

void gather_strided_rows_varlen(const __nv_bfloat16* rows, const std::vector<VarlenChunk>& chunks, int row_elems,
                                int gamma, __nv_bfloat16* strided, int32_t* positions, cudaStream_t stream) {
  constexpr const char* kWhat = "gather strided rows (varlen)";
  for (const VarlenChunk& c : chunks) {
    check_rows(c.n_q, row_elems, gamma, kWhat);
    if (c.q_row < 0 || c.delta_row < 0 || c.first_pos < 0 || c.first_pos % gamma != 0) {
      throw_input_error("{}: chunk at row {} (dense row {}) starts at position {}, not a multiple of gamma {}",
                        kWhat, c.q_row, c.delta_row, c.first_pos, gamma);
    }
  }
  StridedTable table{};
  int launch_rows = 0;
  auto launch = [&] {
    if (launch_rows == 0) return;
    gather_varlen_kernel<<<blocks_for(int64_t{launch_rows} * (row_elems / 8)), kThreads, 0, stream>>>(
        rows, launch_rows, row_elems / 8, gamma, table, strided, positions);
    check_launch(kWhat);
    table.count = 0;
    launch_rows = 0;
  };
  for (const VarlenChunk& c : chunks) {
    if (c.n_q == 0) continue;
    if (table.count == kMaxVarlenChunks) launch();
    table.chunk[table.count++] = {c.q_row, c.first_pos, c.delta_row, launch_rows};
    launch_rows += strided_row_count(c.n_q, gamma);
  }
  launch();
}

}  // namespace deltainfer::cuda
