#pragma once
// Launchers of the prefill attention kernels; prefill_attention.cu validates and picks one.
#include <cuda_runtime.h>

#include "backend/cuda/kernels/prefill_attention_common.cuh"
#include "backend/cuda/prefill_attention.h"

namespace deltainfer::cuda::prefill {

// Shape checks shared by the dense and sparse entry points (throw InputError); validate() checks
// args.kv with validate_kv().
void validate(const PrefillAttentionArgs& args);
// What every prefill entry point needs of its cache: bf16 (an FP8 one is refused, naming the
// staging path), validate_paged_kv without lengths, num_pages >= 1.
void validate_kv(const char* what, const PagedKv& kv);
// Kernel parameters of the dense fields; the sparse fields are left zero.
Params make_params(const PrefillAttentionArgs& args);
bool device_has_wgmma();

// FlashAttention-2 style: mma.sync m16n8k16, ldmatrix, cp.async double buffering (any sm_80+).
cudaError_t launch_sm80(const Params& p, int head_dim, cudaStream_t stream);

// Hopper: wgmma + TMA, warp-specialized producer and two consumer warpgroups (sm_90a).
cudaError_t launch_sm90(const Params& p, int head_dim, int num_pages, cudaStream_t stream);

// FlashAttention-3 recipe (prefill_attention_ws.cu): as launch_sm90 plus intra-warpgroup
// overlap and consumer ping-pong. Throws InputError off sm_90 or for a head dim other than
// 64 / 128. The _sliding / _blocks variants take the same p as launch_sm90_sliding / _blocks
// (same tile schedule, masks and fused delta epilogue); _varlen as launch_sm90_varlen.
cudaError_t launch_sm90_ws(const Params& p, int head_dim, int num_pages, cudaStream_t stream);
cudaError_t launch_sm90_ws_sliding(const Params& p, int head_dim, int num_pages,
                                   cudaStream_t stream);
cudaError_t launch_sm90_ws_blocks(const Params& p, int head_dim, int num_pages,
                                  cudaStream_t stream);
cudaError_t launch_sm90_ws_varlen(const Params& p, const ChunkTable& table, int n_blocks,
                                  int head_dim, int num_pages, cudaStream_t stream);

// The same kernel visiting only the sink and window tiles (p.window, p.sink), or the tiles of
// the per-(head, 128-row query block) lists of 64-key blocks (p.block_offsets/indices); with
// p.delta_dense set, the epilogue applies the delta correction.
cudaError_t launch_sm90_sliding(const Params& p, int head_dim, int num_pages, cudaStream_t stream);
cudaError_t launch_sm90_blocks(const Params& p, int head_dim, int num_pages, cudaStream_t stream);

// Dense (p.window == 0) or sliding over the chunks of `table`, whose query blocks it owns in
// order; p holds the packed q/out/lse and the page tables' base.
cudaError_t launch_sm90_varlen(const Params& p, const ChunkTable& table, int n_blocks, int head_dim,
                               int num_pages, cudaStream_t stream);

}  // namespace deltainfer::cuda::prefill
