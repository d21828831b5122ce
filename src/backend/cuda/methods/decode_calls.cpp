#include "backend/cuda/methods/decode_calls.h"

namespace deltainfer::cuda {

DecodeAttentionArgs dense_decode_args(const model::ModelConfig& model, float softmax_scale,
                                      const CudaDecodeCall& call) {
  DecodeAttentionArgs args;
  args.q = call.q;
  args.k_pool = call.kv.k_pool;
  args.v_pool = call.kv.v_pool;
  args.page_table = call.kv.page_table;
  args.page_table_stride = call.kv.page_table_stride;
  args.kv_lens = call.kv_lens;
  args.batch = call.batch;
  args.n_heads = model.n_heads;
  args.n_kv_heads = model.n_kv_heads;
  args.head_dim = model.head_dim;
  args.max_kv_len = call.max_kv_len;
  args.softmax_scale = softmax_scale;
  args.out = call.out;
  return args;
}

void sparse_decode_over_set(const model::ModelConfig& model, float softmax_scale, const CudaDecodeCall& call,
                            const TokenSet& set, void* workspace, size_t workspace_bytes, cudaStream_t stream) {
  SparseDecodeArgs args;
  args.q = call.q;
  args.k_pool = call.kv.k_pool;
  args.v_pool = call.kv.v_pool;
  args.page_table = call.kv.page_table;
  args.page_table_stride = call.kv.page_table_stride;
  args.set = set;
  args.batch = call.batch;
  args.n_heads = model.n_heads;
  args.n_kv_heads = model.n_kv_heads;
  args.head_dim = model.head_dim;
  args.softmax_scale = softmax_scale;
  args.out = call.out;
  args.workspace = workspace;
  args.workspace_bytes = workspace_bytes;
  sparse_decode(args, stream);
}

}  // namespace deltainfer::cuda
