// Paged KV append (elementwise.h's rope_append_kv with no query heads): keys are rotated by RoPE
// at their positions when inv_freq is given, and copied unchanged when it is all zeros.
#include <nanobind/stl/optional.h>

#include "backend/cuda/elementwise.h"
#include "ops.h"
#include "tensor_view.h"

namespace deltainfer::python {
namespace {

// k, v [n_tokens][n_kv_heads][head_dim]; positions, token_seq [n_tokens]; page_table [batch][stride].
void append_kv(const Tensor& k, const Tensor& v, const Tensor& k_pool, const Tensor& v_pool,
               const Tensor& page_table, const Tensor& positions, const std::optional<Tensor>& token_seq,
               const Tensor& inv_freq, bool interleaved, uintptr_t stream) {
  cuda::RopeAppendArgs args;
  args.n_tokens = static_cast<int>(k.shape(0));
  args.n_kv_heads = static_cast<int>(k.shape(1));
  args.head_dim = static_cast<int>(k.shape(2));
  args.n_heads = 0;  // no query rows: only the cache is written
  args.k = bf16_data(k, "k");
  args.v = bf16_data(v, "v");
  args.k_stride = args.v_stride = int64_t{args.n_kv_heads} * args.head_dim;
  args.positions = i32_data(positions, "positions");
  args.token_seq = optional_i32_data(token_seq, "token_seq");
  args.page_table = i32_data(page_table, "page_table");
  args.page_table_stride = static_cast<int>(page_table.shape(1));
  args.k_pool = bf16_data(k_pool, "k_cache");
  args.v_pool = bf16_data(v_pool, "v_cache");
  args.inv_freq = f32_data(inv_freq, "inv_freq");
  args.interleaved = interleaved;
  cuda::rope_append_kv(args, as_stream(stream));
}

}  // namespace

void bind_kv(nb::module_& m) {
  m.def("append_kv", &append_kv, nb::arg("k"), nb::arg("v"), nb::arg("k_pool"), nb::arg("v_pool"),
        nb::arg("page_table"), nb::arg("positions"), nb::arg("token_seq").none(), nb::arg("inv_freq"),
        nb::arg("interleaved"), nb::arg("stream"));
}

}  // namespace deltainfer::python
