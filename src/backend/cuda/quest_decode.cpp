#include "backend/cuda/quest_decode.h"

#include <algorithm>
#include <utility>

#include "attention/layer_schedule.h"
#include "backend/cuda/cuda_check.h"
#include "core/error.h"

namespace deltainfer::cuda {
namespace {

bool decodes_with_quest(const attention::DecodeConfig& decode, const attention::LayerSchedule& schedule, int layer) {
  return decode.kind == attention::DecodeKind::Quest && schedule.role(layer) == attention::LayerRole::Sparse;
}

// The CPU twin's Quest selection: no sink page, and the page being written always kept (recency of
// one token rounds up to that page).
PageSelectConfig quest_select_config(const attention::DecodeConfig& decode) {
  if (decode.page != kQuestPage) {
    throw_input_error("--decode quest on the GPU selects pages of {} tokens (--page {}); use --page {} or "
                      "--backend cpu",
                      kQuestPage, decode.page, kQuestPage);
  }
  PageSelectConfig select;
  select.budget = static_cast<int>(decode.budget);
  select.page = kQuestPage;
  select.recency = 1;
  select.keep_sink = false;
  return select;
}

}  // namespace

int quest_layer_count(const attention::DecodeConfig& decode, int n_layers) {
  const attention::LayerSchedule schedule(decode, n_layers);
  int count = 0;
  for (int layer = 0; layer < n_layers; ++layer) count += decodes_with_quest(decode, schedule, layer) ? 1 : 0;
  return count;
}

QuestCache quest_cache_of(const model::ModelConfig& model, const __nv_bfloat16* k_pool, __nv_bfloat16* bounds,
                          const int32_t* page_table, int num_pages, const int32_t* kv_len, int max_kv_len) {
  QuestCache cache;
  cache.k_pool = k_pool;
  cache.bounds = bounds;
  cache.page_table = page_table;
  cache.page_table_stride = num_pages;
  cache.kv_lens = kv_len;
  cache.batch = 1;
  cache.n_kv_heads = model.n_kv_heads;
  cache.head_dim = model.head_dim;
  cache.max_kv_len = max_kv_len;
  return cache;
}

// ---- QuestBounds ----

QuestBounds::QuestBounds(const attention::DecodeConfig& decode, const model::ModelConfig& model,
                         std::vector<const __nv_bfloat16*> k_pools, const int32_t* page_table, int num_pages)
    : model_(model),
      k_pools_(std::move(k_pools)),
      bounds_(k_pools_.size()),
      page_table_(page_table),
      num_pages_(num_pages) {
  const attention::LayerSchedule schedule(decode, static_cast<int>(k_pools_.size()));
  const size_t elements = quest_bounds_elements(num_pages, model.n_kv_heads, model.head_dim);
  bool any = false;
  for (int layer = 0; layer < schedule.n_layers(); ++layer) {
    if (!decodes_with_quest(decode, schedule, layer)) continue;
    bounds_[static_cast<size_t>(layer)] = DeviceBuffer<__nv_bfloat16>(elements);
    any = true;
  }
  if (any) rebuild_len_ = DeviceBuffer<int32_t>(1);
}

__nv_bfloat16* QuestBounds::layer(int i) {
  if (i < 0 || static_cast<size_t>(i) >= bounds_.size()) return nullptr;
  return bounds_[static_cast<size_t>(i)].data();  // nullptr when empty
}

void QuestBounds::truncate(int64_t n_tokens) {
  current_ = std::min(current_, n_tokens / kQuestPage * kQuestPage);
}

void QuestBounds::rebuild_stale(int64_t kv_len, cudaStream_t stream) {
  if (rebuild_len_.size() == 0 || current_ >= kv_len) {
    current_ = kv_len;
    return;
  }
  // The build kernel covers [0, len) of the page table it is given: start it at the pool page that
  // holds the first stale key, so a prefill chunk only reads the keys it may have changed.
  const int first_pool_page = static_cast<int>(current_ / kKvPageSize);
  const int32_t len = static_cast<int32_t>(kv_len - int64_t{first_pool_page} * kKvPageSize);
  CUDA_CHECK(cudaMemcpyAsync(rebuild_len_.data(), &len, sizeof(len), cudaMemcpyHostToDevice, stream));
  for (size_t i = 0; i < bounds_.size(); ++i) {
    if (bounds_[i].size() == 0) continue;
    quest_build_bounds(quest_cache_of(model_, k_pools_[i], bounds_[i].data(), page_table_ + first_pool_page,
                                      num_pages_ - first_pool_page, rebuild_len_.data(), len),
                       stream);
  }
  // `len` is pageable and on this stack; this runs only after a prefill (which synchronizes
  // anyway) or a truncation, so waiting here costs nothing that matters.
  CUDA_CHECK(cudaStreamSynchronize(stream));
  current_ = kv_len;
}

void QuestBounds::append(int i, const int32_t* kv_len, int max_kv_len, cudaStream_t stream) {
  __nv_bfloat16* bounds = layer(i);
  if (bounds == nullptr) return;
  quest_append_bounds(
      quest_cache_of(model_, k_pools_[static_cast<size_t>(i)], bounds, page_table_, num_pages_, kv_len, max_kv_len),
      stream);
}

// ---- QuestSelector ----

QuestSelector::QuestSelector(const attention::DecodeConfig& decode, const model::ModelConfig& model,
                             int64_t capacity)
    : select_(quest_select_config(decode)), n_heads_(model.n_heads), set_capacity_(token_set_capacity(select_)) {
  const size_t sets = static_cast<size_t>(model.n_kv_heads);
  set_indices_ = DeviceBuffer<int32_t>(sets * static_cast<size_t>(set_capacity_));
  set_counts_ = DeviceBuffer<int32_t>(sets);
  select_ws_ = DeviceBuffer<unsigned char>(
      plan_quest_select(1, model.n_heads, model.n_kv_heads, model.head_dim, static_cast<int>(capacity), select_)
          .workspace_bytes);
}

size_t QuestSelector::device_bytes() const {
  return set_indices_.bytes() + set_counts_.bytes() + select_ws_.bytes();
}

TokenSet QuestSelector::select(const __nv_bfloat16* q, const QuestCache& cache, cudaStream_t stream) {
  const TokenSet set{set_indices_.data(), set_counts_.data(), set_capacity_, cache.n_kv_heads};
  quest_select(q, n_heads_, cache, select_, select_ws_.data(), select_ws_.bytes(), set, stream);
  return set;
}

}  // namespace deltainfer::cuda
