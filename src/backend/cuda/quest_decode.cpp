#include "backend/cuda/quest_decode.h"

#include <algorithm>
#include <utility>

#include "attention/layer_schedule.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/methods/cuda_decode_method.h"
#include "core/error.h"

namespace deltainfer::cuda {
namespace {

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

// Layer i's K pool seen through `batch` rows of page_table and kv_lens.
QuestCache layer_cache(PagedKv kv, __nv_bfloat16* bounds, const int32_t* page_table, int page_table_stride,
                       const int32_t* kv_lens, int max_kv_len, int batch) {
  kv.page_table = page_table;
  kv.page_table_stride = page_table_stride;
  kv.kv_lens = kv_lens;
  kv.max_kv_len = max_kv_len;
  kv.batch = batch;
  return QuestCache{kv, bounds};
}

}  // namespace

// ---- QuestBounds ----

namespace {

// bf16 pools of pool_pages pages, as the descriptors QuestBounds keeps.
std::vector<PagedKv> bf16_key_pools(const model::ModelConfig& model, const std::vector<const __nv_bfloat16*>& pools,
                                    int pool_pages) {
  std::vector<PagedKv> described;
  for (const __nv_bfloat16* pool : pools) {
    PagedKv kv;
    kv.k_pool = pool;
    kv.num_pages = pool_pages;
    kv.n_kv_heads = model.n_kv_heads;
    kv.head_dim = model.head_dim;
    described.push_back(kv);
  }
  return described;
}

}  // namespace

QuestBounds::QuestBounds(const model::ModelConfig& model, std::vector<const __nv_bfloat16*> k_pools, int pool_pages,
                         int table_pages)
    : QuestBounds(model, bf16_key_pools(model, k_pools, pool_pages), table_pages) {}

QuestBounds::QuestBounds(const model::ModelConfig& model, std::vector<PagedKv> k_pools, int table_pages)
    : model_(model), k_pools_(std::move(k_pools)), bounds_(k_pools_.size()),
      pool_pages_(k_pools_.empty() ? 0 : k_pools_.front().num_pages), table_(static_cast<size_t>(table_pages)),
      rebuild_len_(1) {
  for (const PagedKv& kv : k_pools_) {
    if (kv.num_pages != pool_pages_ || kv.n_kv_heads != model.n_kv_heads || kv.head_dim != model.head_dim) {
      throw_error("Quest bounds: layer pools of {} pages, {} KV heads, head_dim {}; expected {}, {}, {}", kv.num_pages,
                  kv.n_kv_heads, kv.head_dim, pool_pages_, model.n_kv_heads, model.head_dim);
    }
  }
}

void QuestBounds::ensure_layers(const attention::DecodeConfig& decode) {
  const attention::LayerSchedule schedule(decode, static_cast<int>(k_pools_.size()));
  const size_t elements = quest_bounds_elements(pool_pages_, model_.n_kv_heads, model_.head_dim);
  for (int layer = 0; layer < schedule.n_layers(); ++layer) {
    if (!keeps_page_state(decode, schedule, layer) || bounds_[static_cast<size_t>(layer)].size() != 0) continue;
    bounds_[static_cast<size_t>(layer)] = DeviceBuffer<__nv_bfloat16>(elements);
    current_.clear();  // a new layer's bounds are current for no sequence yet
  }
}

__nv_bfloat16* QuestBounds::bounds(int i) {
  if (i < 0 || static_cast<size_t>(i) >= bounds_.size()) return nullptr;
  return bounds_[static_cast<size_t>(i)].data();  // nullptr when empty
}

void QuestBounds::truncate(int64_t sequence, int64_t n_tokens) {
  const auto found = current_.find(sequence);
  if (found != current_.end()) found->second = std::min(found->second, n_tokens / kQuestPage * kQuestPage);
}

void QuestBounds::forget(int64_t sequence) { current_.erase(sequence); }

void QuestBounds::rebuild_stale(int64_t sequence, const int32_t* pages, int64_t kv_len, cudaStream_t stream) {
  const bool any = std::any_of(bounds_.begin(), bounds_.end(), [](const auto& b) { return b.size() != 0; });
  int64_t& current = current_[sequence];
  if (!any || current >= kv_len) {
    current = kv_len;
    return;
  }
  // The build kernel covers [0, len) of the page table it is given: start it at the page that
  // holds the first stale key, so a prefill chunk only reads the keys it may have changed.
  const int64_t first_page = current / kKvPageSize;
  const int64_t table_pages = (kv_len + kKvPageSize - 1) / kKvPageSize;
  if (table_pages > static_cast<int64_t>(table_.size())) {
    throw_error("Quest bounds: a sequence of {} pages, the table holds {}", table_pages, table_.size());
  }
  const int32_t len = static_cast<int32_t>(kv_len - first_page * kKvPageSize);
  CUDA_CHECK(cudaMemcpyAsync(table_.data(), pages + first_page,
                             static_cast<size_t>(table_pages - first_page) * sizeof(int32_t), cudaMemcpyHostToDevice,
                             stream));
  CUDA_CHECK(cudaMemcpyAsync(rebuild_len_.data(), &len, sizeof(len), cudaMemcpyHostToDevice, stream));
  for (size_t i = 0; i < bounds_.size(); ++i) {
    if (bounds_[i].size() == 0) continue;
    quest_build_bounds(layer_cache(k_pools_[i], bounds_[i].data(), table_.data(),
                                   static_cast<int>(table_pages - first_page), rebuild_len_.data(), len, 1),
                       stream);
  }
  // `pages` and `len` are pageable and on the caller's stack: this runs only after a prefill
  // (which synchronizes anyway) or a truncation, so waiting here costs nothing that matters.
  CUDA_CHECK(cudaStreamSynchronize(stream));
  current = kv_len;
}

void QuestBounds::append(int i, const int32_t* page_table, int page_table_stride, const int32_t* kv_lens,
                         int max_kv_len, int batch, cudaStream_t stream) {
  __nv_bfloat16* layer_bounds = bounds(i);
  if (layer_bounds == nullptr) return;
  quest_append_bounds(layer_cache(k_pools_[static_cast<size_t>(i)], layer_bounds, page_table, page_table_stride,
                                  kv_lens, max_kv_len, batch),
                      stream);
}

// ---- QuestSelector ----

QuestSelector::QuestSelector(const attention::DecodeConfig& decode, const model::ModelConfig& model,
                             int64_t capacity, int max_batch)
    : select_(quest_select_config(decode)), n_heads_(model.n_heads), set_capacity_(token_set_capacity(select_)) {
  const size_t sets = static_cast<size_t>(max_batch) * static_cast<size_t>(model.n_kv_heads);
  set_indices_ = DeviceBuffer<int32_t>(sets * static_cast<size_t>(set_capacity_));
  set_counts_ = DeviceBuffer<int32_t>(sets);
  size_t workspace = 0;
  for (int batch = 1; batch <= max_batch; ++batch) {
    workspace = std::max(workspace, plan_quest_select(batch, model.n_heads, model.n_kv_heads, model.head_dim,
                                                      static_cast<int>(capacity), select_)
                                        .workspace_bytes);
  }
  select_ws_ = DeviceBuffer<unsigned char>(workspace);
}

size_t QuestSelector::device_bytes() const {
  return set_indices_.bytes() + set_counts_.bytes() + select_ws_.bytes();
}

TokenSet QuestSelector::select(const __nv_bfloat16* q, const QuestCache& cache, cudaStream_t stream) {
  const TokenSet set{set_indices_.data(), set_counts_.data(), set_capacity_, cache.kv.n_kv_heads};
  quest_select(q, n_heads_, cache, select_, select_ws_.data(), select_ws_.bytes(), set, stream);
  return set;
}

}  // namespace deltainfer::cuda
