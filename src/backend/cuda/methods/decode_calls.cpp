#include "backend/cuda/methods/decode_calls.h"

namespace deltainfer::cuda {

PagedKv paged_kv_of(const model::ModelConfig& model, const CudaDecodeCall& call) {
  PagedKv kv;
  kv.k_pool = call.kv.k_pool;
  kv.v_pool = call.kv.v_pool;
  kv.dtype = call.kv.dtype;
  kv.k_scales = call.kv.k_scales;
  kv.v_scales = call.kv.v_scales;
  kv.num_pages = call.kv.num_pages;
  kv.page_table = call.kv.page_table;
  kv.page_table_stride = call.kv.page_table_stride;
  kv.kv_lens = call.kv_lens;
  kv.batch = call.batch;
  kv.max_kv_len = call.max_kv_len;
  kv.n_kv_heads = model.n_kv_heads;
  kv.head_dim = model.head_dim;
  return kv;
}

DecodeAttentionArgs dense_decode_args(const model::ModelConfig& model, float softmax_scale,
                                      const CudaDecodeCall& call) {
  DecodeAttentionArgs args;
  args.q = call.q;
  args.kv = paged_kv_of(model, call);
  args.n_heads = model.n_heads;
  args.softmax_scale = softmax_scale;
  args.out = call.out;
  return args;
}

void sparse_decode_over_set(const model::ModelConfig& model, float softmax_scale, const CudaDecodeCall& call,
                            const TokenSet& set, void* workspace, size_t workspace_bytes, cudaStream_t stream) {
  SparseDecodeArgs args;
  args.q = call.q;
  args.kv = paged_kv_of(model, call);
  args.set = set;
  args.n_heads = model.n_heads;
  args.softmax_scale = softmax_scale;
  args.out = call.out;
  args.workspace = workspace;
  args.workspace_bytes = workspace_bytes;
  sparse_decode(args, stream);
}

}  // namespace deltainfer::cuda
