// Decode: dense split-KV (decode_attention.h), DELTA's dense pass + selection, sparse decode over a
// token set, StreamingLLM's set and Quest's key bounds + page selection (delta_decode.h). Workspaces are torch uint8 tensors sized by
// the *_plan functions, so allocation stays with PyTorch's caching allocator.
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>

#include "backend/cuda/decode_attention.h"
#include "backend/cuda/delta_decode.h"
#include "ops.h"
#include "tensor_view.h"

namespace deltainfer::python {
namespace {

std::pair<int, size_t> decode_plan(int batch, int n_heads, int n_kv_heads, int head_dim, int max_kv_len,
                                   int num_splits) {
  const cuda::DecodeAttentionPlan plan = cuda::plan_decode_attention(
      batch, n_heads, n_kv_heads, head_dim, max_kv_len, cuda::current_device_sm_count(), num_splits);
  return {plan.num_splits, plan.workspace_bytes};
}

// The bf16 paged cache of q [batch][n_heads][head_dim]: pools [num_pages][n_kv_heads][64][head_dim],
// page_table [batch][stride] (kv_lens and max_kv_len left to the caller).
cuda::PagedKv paged_kv(const Tensor& q, const Tensor& k_pool, const Tensor* v_pool, const Tensor& page_table) {
  cuda::PagedKv kv;
  kv.k_pool = bf16_data(k_pool, "k_cache");
  kv.v_pool = v_pool != nullptr ? bf16_data(*v_pool, "v_cache") : nullptr;
  kv.num_pages = static_cast<int>(k_pool.shape(0));
  kv.page_table = i32_data(page_table, "page_table");
  kv.page_table_stride = static_cast<int>(page_table.shape(1));
  kv.batch = static_cast<int>(q.shape(0));
  kv.n_kv_heads = static_cast<int>(k_pool.shape(1));
  kv.head_dim = static_cast<int>(q.shape(2));
  return kv;
}

// The fields DecodeAttentionArgs and SparseDecodeArgs share: q, out [batch][n_heads][head_dim] and
// the paged cache.
template <typename Args>
Args paged_decode_args(const Tensor& q, const Tensor& k_pool, const Tensor& v_pool, const Tensor& page_table,
                       const Tensor& out, const std::optional<Tensor>& lse, float scale) {
  Args args;
  args.q = bf16_data(q, "q");
  args.kv = paged_kv(q, k_pool, &v_pool, page_table);
  args.n_heads = static_cast<int>(q.shape(1));
  args.softmax_scale = scale;
  args.out = bf16_data(out, "out");
  args.lse = optional_f32_data(lse, "lse");
  return args;
}

// kv_lens [batch].
cuda::DecodeAttentionArgs decode_args(const Tensor& q, const Tensor& k_pool, const Tensor& v_pool,
                                      const Tensor& page_table, const Tensor& kv_lens, const Tensor& out,
                                      const std::optional<Tensor>& lse, int max_kv_len, float scale) {
  auto args = paged_decode_args<cuda::DecodeAttentionArgs>(q, k_pool, v_pool, page_table, out, lse, scale);
  args.kv.kv_lens = i32_data(kv_lens, "kv_lens");
  args.kv.max_kv_len = max_kv_len;
  return args;
}

// The fast path of decode_attention: ops.py has checked every tensor (dtype, device, contiguity,
// shapes) and passes data pointers as integers, so no DLPack capsule is built per tensor per call
// (seven of them made the op 0.85x SDPA at batch 1); the kernel still checks shapes and workspace.
template <typename T>
T* pointer(uintptr_t address) {
  return reinterpret_cast<T*>(address);
}

void decode_raw(uintptr_t q, uintptr_t k_pool, uintptr_t v_pool, uintptr_t page_table, int page_table_stride,
                uintptr_t kv_lens, uintptr_t out, uintptr_t lse, int batch, int n_heads, int n_kv_heads, int head_dim,
                int max_kv_len, float scale, uintptr_t workspace, size_t workspace_bytes, int num_splits,
                uintptr_t stream) {
  cuda::DecodeAttentionArgs args;
  args.q = pointer<const __nv_bfloat16>(q);
  args.kv.k_pool = pointer<const __nv_bfloat16>(k_pool);
  args.kv.v_pool = pointer<const __nv_bfloat16>(v_pool);
  args.kv.num_pages = 0;  // not passed: dense decode reaches pages through the table only
  args.kv.page_table = pointer<const int32_t>(page_table);
  args.kv.page_table_stride = page_table_stride;
  args.kv.kv_lens = pointer<const int32_t>(kv_lens);
  args.kv.batch = batch;
  args.kv.n_kv_heads = n_kv_heads;
  args.kv.head_dim = head_dim;
  args.kv.max_kv_len = max_kv_len;
  args.n_heads = n_heads;
  args.softmax_scale = scale;
  args.out = pointer<__nv_bfloat16>(out);
  args.lse = pointer<float>(lse);  // 0: no LSE
  args.workspace = pointer<void>(workspace);
  args.workspace_bytes = workspace_bytes;
  args.num_splits = num_splits;
  cuda::decode_attention(args, as_stream(stream));
}

cuda::PageSelectConfig select_config(int budget, int page, int recency, bool keep_sink) {
  cuda::PageSelectConfig config;
  config.budget = budget;
  config.page = page;
  config.recency = recency;
  config.keep_sink = keep_sink;
  return config;
}

// (workspace bytes, token-set capacity) for delta_select.
std::pair<size_t, int> delta_select_plan(int batch, int n_heads, int n_kv_heads, int head_dim, int max_kv_len,
                                         int budget, int page, int recency, bool keep_sink) {
  const cuda::PageSelectConfig config = select_config(budget, page, recency, keep_sink);
  const int capacity = cuda::token_set_capacity(config);  // validates the config before any CUDA call
  const cuda::DeltaSelectPlan plan = cuda::plan_delta_select(batch, n_heads, n_kv_heads, head_dim, max_kv_len,
                                                             config, cuda::current_device_sm_count());
  return {plan.workspace_bytes, capacity};
}

cuda::TokenSet token_set(const Tensor& indices, const Tensor& counts) {
  cuda::TokenSet set;
  set.indices = i32_data(indices, "indices");
  set.counts = i32_data(counts, "counts");
  set.capacity = static_cast<int>(indices.shape(indices.ndim() - 1));
  set.sets_per_seq = static_cast<int>(counts.shape(1));
  return set;
}

void delta_select(const Tensor& q, const Tensor& k_pool, const Tensor& v_pool, const Tensor& page_table,
                  const Tensor& kv_lens, const Tensor& out, const Tensor& lse, int max_kv_len, float scale,
                  int budget, int page, int recency, bool keep_sink, const Tensor& workspace,
                  const Tensor& indices, const Tensor& counts, uintptr_t stream) {
  cuda::DecodeAttentionArgs dense =
      decode_args(q, k_pool, v_pool, page_table, kv_lens, out, std::optional<Tensor>(lse), max_kv_len, scale);
  cuda::delta_decode_select(dense, select_config(budget, page, recency, keep_sink),
                            checked_data(workspace, Elem::kU8, "workspace"), workspace.size(),
                            token_set(indices, counts), as_stream(stream));
}

size_t sparse_decode_plan(int batch, int n_heads, int n_kv_heads, int head_dim, int capacity, int sets_per_seq) {
  return cuda::plan_sparse_decode(batch, n_heads, n_kv_heads, head_dim, capacity, sets_per_seq,
                                  cuda::current_device_sm_count())
      .workspace_bytes;
}

void sparse_decode(const Tensor& q, const Tensor& k_pool, const Tensor& v_pool, const Tensor& page_table,
                   const Tensor& indices, const Tensor& counts, const Tensor& out, const std::optional<Tensor>& lse,
                   float scale, const Tensor& workspace, uintptr_t stream) {
  auto args = paged_decode_args<cuda::SparseDecodeArgs>(q, k_pool, v_pool, page_table, out, lse, scale);
  args.set = token_set(indices, counts);
  args.workspace = checked_data(workspace, Elem::kU8, "workspace");
  args.workspace_bytes = workspace.size();
  cuda::sparse_decode(args, as_stream(stream));
}

void streaming_select(const Tensor& kv_lens, int sink, int window, const Tensor& indices, const Tensor& counts,
                      uintptr_t stream) {
  cuda::streaming_select(i32_data(kv_lens, "kv_lens"), static_cast<int>(kv_lens.shape(0)), sink, window,
                         token_set(indices, counts), as_stream(stream));
}

// (workspace bytes, token-set capacity per KV head) for quest_select; Quest pages are 16 tokens.
std::pair<size_t, int> quest_select_plan(int batch, int n_heads, int n_kv_heads, int head_dim, int max_kv_len,
                                         int budget, int recency, bool keep_sink) {
  const cuda::PageSelectConfig config = select_config(budget, cuda::kQuestPage, recency, keep_sink);
  const int capacity = cuda::token_set_capacity(config);
  return {cuda::plan_quest_select(batch, n_heads, n_kv_heads, head_dim, max_kv_len, config).workspace_bytes,
          capacity};
}

size_t quest_bounds_elements(int num_pages, int n_kv_heads, int head_dim) {
  return cuda::quest_bounds_elements(num_pages, n_kv_heads, head_dim);
}

// Builds the key bounds of every Quest page of [0, kv_len) when build_bounds (else uses `bounds` as
// they are), then selects the top pages per KV head into indices [batch][n_kv_heads][capacity].
void quest_select(const Tensor& q, const Tensor& k_pool, const Tensor& bounds, const Tensor& page_table,
                  const Tensor& kv_lens, int max_kv_len, int budget, int recency, bool keep_sink, bool build_bounds,
                  const Tensor& workspace, const Tensor& indices, const Tensor& counts, uintptr_t stream) {
  cuda::QuestCache cache{paged_kv(q, k_pool, nullptr, page_table), bf16_data(bounds, "bounds")};
  cache.kv.kv_lens = i32_data(kv_lens, "kv_lens");
  cache.kv.max_kv_len = max_kv_len;
  if (build_bounds) cuda::quest_build_bounds(cache, as_stream(stream));
  cuda::quest_select(bf16_data(q, "q"), static_cast<int>(q.shape(1)), cache,
                     select_config(budget, cuda::kQuestPage, recency, keep_sink),
                     checked_data(workspace, Elem::kU8, "workspace"), workspace.size(), token_set(indices, counts),
                     as_stream(stream));
}

}  // namespace

void bind_decode(nb::module_& m) {
  m.def("decode_plan", &decode_plan, nb::arg("batch"), nb::arg("n_heads"), nb::arg("n_kv_heads"),
        nb::arg("head_dim"), nb::arg("max_kv_len"), nb::arg("num_splits"));
  m.def("decode_raw", &decode_raw, nb::arg("q"), nb::arg("k_pool"), nb::arg("v_pool"), nb::arg("page_table"),
        nb::arg("page_table_stride"), nb::arg("kv_lens"), nb::arg("out"), nb::arg("lse"), nb::arg("batch"),
        nb::arg("n_heads"), nb::arg("n_kv_heads"), nb::arg("head_dim"), nb::arg("max_kv_len"), nb::arg("scale"),
        nb::arg("workspace"), nb::arg("workspace_bytes"), nb::arg("num_splits"), nb::arg("stream"));
  m.def("delta_select_plan", &delta_select_plan, nb::arg("batch"), nb::arg("n_heads"), nb::arg("n_kv_heads"),
        nb::arg("head_dim"), nb::arg("max_kv_len"), nb::arg("budget"), nb::arg("page"), nb::arg("recency"),
        nb::arg("keep_sink"));
  m.def("delta_select", &delta_select, nb::arg("q"), nb::arg("k_pool"), nb::arg("v_pool"), nb::arg("page_table"),
        nb::arg("kv_lens"), nb::arg("out"), nb::arg("lse"), nb::arg("max_kv_len"), nb::arg("scale"),
        nb::arg("budget"), nb::arg("page"), nb::arg("recency"), nb::arg("keep_sink"), nb::arg("workspace"),
        nb::arg("indices"), nb::arg("counts"), nb::arg("stream"));
  m.def("sparse_decode_plan", &sparse_decode_plan, nb::arg("batch"), nb::arg("n_heads"), nb::arg("n_kv_heads"),
        nb::arg("head_dim"), nb::arg("capacity"), nb::arg("sets_per_seq"));
  m.def("sparse_decode", &sparse_decode, nb::arg("q"), nb::arg("k_pool"), nb::arg("v_pool"), nb::arg("page_table"),
        nb::arg("indices"), nb::arg("counts"), nb::arg("out"), nb::arg("lse").none(), nb::arg("scale"),
        nb::arg("workspace"), nb::arg("stream"));
  m.def("quest_select_plan", &quest_select_plan, nb::arg("batch"), nb::arg("n_heads"), nb::arg("n_kv_heads"),
        nb::arg("head_dim"), nb::arg("max_kv_len"), nb::arg("budget"), nb::arg("recency"), nb::arg("keep_sink"));
  m.def("quest_bounds_elements", &quest_bounds_elements, nb::arg("num_pages"), nb::arg("n_kv_heads"),
        nb::arg("head_dim"));
  m.def("quest_select", &quest_select, nb::arg("q"), nb::arg("k_pool"), nb::arg("bounds"), nb::arg("page_table"),
        nb::arg("kv_lens"), nb::arg("max_kv_len"), nb::arg("budget"), nb::arg("recency"), nb::arg("keep_sink"),
        nb::arg("build_bounds"), nb::arg("workspace"), nb::arg("indices"), nb::arg("counts"), nb::arg("stream"));
  m.def("streaming_select", &streaming_select, nb::arg("kv_lens"), nb::arg("sink"), nb::arg("window"),
        nb::arg("indices"), nb::arg("counts"), nb::arg("stream"));
}

}  // namespace deltainfer::python
