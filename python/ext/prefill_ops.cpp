// Prefill: dense causal (optionally at given query positions), sliding window + sink and
// vertical-slash block-sparse, the sparse ones with the optional fused Δ correction
// (backend/cuda/prefill_attention.h, sparse_prefill.h, vslash_estimate.h).
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>

#include <optional>
#include <stdexcept>
#include <string>

#include "backend/cuda/prefill_attention.h"
#include "backend/cuda/sparse_prefill.h"
#include "backend/cuda/vslash_estimate.h"
#include "ops.h"
#include "tensor_view.h"

namespace deltainfer::python {
namespace {

// The Python layer passes one of "auto", "sm80", "sm90", "sm90ws" (checked there first).
cuda::PrefillKernel prefill_kernel(const std::string& name) {
  const std::optional<cuda::PrefillKernel> kernel = cuda::prefill_kernel_named(name);
  if (!kernel) throw std::invalid_argument("kernel: expected auto, sm80, sm90 or sm90ws, got " + name);
  return *kernel;
}

// q, out [n_q][n_heads][head_dim]; pools [num_pages][n_kv_heads][64][head_dim]; page_table [pages].
cuda::PrefillAttentionArgs prefill_args(const Tensor& q, const Tensor& k_pool, const Tensor& v_pool,
                                        const Tensor& page_table, const Tensor& out, const std::optional<Tensor>& lse,
                                        int kv_len, int first_pos, float scale) {
  cuda::PrefillAttentionArgs args;
  args.q = bf16_data(q, "q");
  args.first_pos = first_pos;
  args.n_q = static_cast<int>(q.shape(0));
  args.n_heads = static_cast<int>(q.shape(1));
  args.softmax_scale = scale;
  args.kv = cuda::bf16_sequence_kv(bf16_data(k_pool, "k_cache"), bf16_data(v_pool, "v_cache"),
                                   static_cast<int>(k_pool.shape(0)), static_cast<int>(k_pool.shape(1)),
                                   static_cast<int>(q.shape(2)), i32_data(page_table, "page_table"), kv_len);
  args.out = bf16_data(out, "out");
  args.lse = optional_f32_data(lse, "lse");
  return args;
}

void prefill(const Tensor& q, const Tensor& k_pool, const Tensor& v_pool, const Tensor& page_table,
             const Tensor& out, const std::optional<Tensor>& lse, int kv_len, int first_pos,
             const std::optional<Tensor>& q_pos, float scale, const std::string& kernel, uintptr_t stream) {
  cuda::PrefillAttentionArgs args = prefill_args(q, k_pool, v_pool, page_table, out, lse, kv_len, first_pos, scale);
  args.q_pos = optional_i32_data(q_pos, "q_pos");
  cuda::prefill_attention(args, as_stream(stream), prefill_kernel(kernel));
}

void sliding_prefill(const Tensor& q, const Tensor& k_pool, const Tensor& v_pool, const Tensor& page_table,
                     const Tensor& out, const std::optional<Tensor>& lse, int kv_len, int first_pos, float scale,
                     int window, int sink, const std::optional<Tensor>& dense_rows, int gamma, const std::string& kernel,
                     uintptr_t stream) {
  const cuda::PrefillAttentionArgs args =
      prefill_args(q, k_pool, v_pool, page_table, out, lse, kv_len, first_pos, scale);
  const cuda::DeltaFusion fused{optional_bf16_data(dense_rows, "dense_rows"), dense_rows ? gamma : 0};
  cuda::sliding_prefill_attention(args, window, sink, as_stream(stream), fused, prefill_kernel(kernel));
}

// The estimator's buffers are its own cudaMallocs, sized for this call; their cudaFree at return
// waits for the launches that read them.
void vslash_prefill(const Tensor& q, const Tensor& k_pool, const Tensor& v_pool, const Tensor& page_table,
                    const Tensor& out, const std::optional<Tensor>& lse, int kv_len, int first_pos, float scale,
                    int estimate_queries, int vertical, int slash, const std::optional<Tensor>& dense_rows, int gamma,
                    const std::string& kernel, uintptr_t stream) {
  const cuda::PrefillAttentionArgs args =
      prefill_args(q, k_pool, v_pool, page_table, out, lse, kv_len, first_pos, scale);
  cuda::VslashEstimator estimator(args.n_heads, args.kv.head_dim, args.n_q, kv_len,
                                  cuda::VslashParams{estimate_queries, vertical, slash});
  const cuda::BlockSparseLists lists = estimator.build_lists(args, as_stream(stream));
  const cuda::DeltaFusion fused{optional_bf16_data(dense_rows, "dense_rows"), dense_rows ? gamma : 0};
  cuda::block_sparse_prefill_attention(args, lists, as_stream(stream), fused, prefill_kernel(kernel));
}

}  // namespace

void bind_prefill(nb::module_& m) {
  m.attr("PAGE_SIZE") = cuda::kKvPageSize;
  m.def("prefill", &prefill, nb::arg("q"), nb::arg("k_pool"), nb::arg("v_pool"), nb::arg("page_table"),
        nb::arg("out"), nb::arg("lse").none(), nb::arg("kv_len"), nb::arg("first_pos"), nb::arg("q_pos").none(),
        nb::arg("scale"), nb::arg("kernel"), nb::arg("stream"));
  m.def("sliding_prefill", &sliding_prefill, nb::arg("q"), nb::arg("k_pool"), nb::arg("v_pool"),
        nb::arg("page_table"), nb::arg("out"), nb::arg("lse").none(), nb::arg("kv_len"), nb::arg("first_pos"),
        nb::arg("scale"), nb::arg("window"), nb::arg("sink"), nb::arg("dense_rows").none(), nb::arg("gamma"),
        nb::arg("kernel"), nb::arg("stream"));
  m.def("vslash_prefill", &vslash_prefill, nb::arg("q"), nb::arg("k_pool"), nb::arg("v_pool"), nb::arg("page_table"),
        nb::arg("out"), nb::arg("lse").none(), nb::arg("kv_len"), nb::arg("first_pos"), nb::arg("scale"),
        nb::arg("estimate_queries"), nb::arg("vertical"), nb::arg("slash"), nb::arg("dense_rows").none(),
        nb::arg("gamma"), nb::arg("kernel"), nb::arg("stream"));
}

}  // namespace deltainfer::python
