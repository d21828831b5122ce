// Quest decode on the GPU (METHODS.md section 3): each Sparse layer selects every KV head's pages
// from the key bounds beside the pool (QuestSelector, quest_decode.h) and attends them with sparse
// decode, one set per KV head. The bounds are Quest's page state (QuestBounds): declared here, kept
// current by the transformer through CudaPageState's hooks.
#include <memory>

#include "backend/cuda/methods/decode_calls.h"
#include "backend/cuda/quest_decode.h"
#include "core/error.h"

namespace deltainfer::cuda::methods {
namespace {

class QuestDecode final : public CudaDecodeMethod {
 public:
  explicit QuestDecode(const CudaDecodeSetup& setup)
      : model_(setup.model),
        scale_(setup.softmax_scale),
        selector_(setup.config.decode, setup.model, setup.capacity, setup.max_batch) {
    const model::ModelConfig& m = model_;
    const int set_capacity = selector_.set_capacity();
    sparse_ws_ = DeviceBuffer<unsigned char>(largest_plan(setup.max_batch, setup.capacity, [&](int batch, int) {
      return plan_sparse_decode(batch, m.n_heads, m.n_kv_heads, m.head_dim, set_capacity, m.n_kv_heads, setup.sms)
          .workspace_bytes;
    }));
  }

  size_t device_bytes() const override { return selector_.device_bytes() + sparse_ws_.bytes(); }

  void decode(const CudaDecodeCall& call, cudaStream_t stream) override {
    if (call.role != attention::LayerRole::Sparse) {
      throw_error("Quest layer {} is {}: only Sparse layers select", call.layer, attention::layer_role_name(call.role));
    }
    const QuestCache cache{paged_kv_of(model_, call), static_cast<__nv_bfloat16*>(call.kv.page_state)};
    sparse_decode_over_set(model_, scale_, call, selector_.select(call.q, cache, stream), sparse_ws_.data(),
                           sparse_ws_.bytes(), stream);
  }

 private:
  model::ModelConfig model_;
  float scale_;
  QuestSelector selector_;
  DeviceBuffer<unsigned char> sparse_ws_;
};

}  // namespace

CudaDecodeMethodInfo quest() {
  CudaDecodeMethodInfo m;
  m.page_state_bytes = [](const model::ModelConfig& model) {
    return quest_bounds_elements(1, model.n_kv_heads, model.head_dim) * sizeof(__nv_bfloat16);
  };
  m.create_page_state = [](const CudaPageStateSetup& setup) -> std::unique_ptr<CudaPageState> {
    return std::make_unique<QuestBounds>(setup.model, setup.k_pools, setup.table_pages);
  };
  m.create = [](const CudaDecodeSetup& setup) -> std::unique_ptr<CudaDecodeMethod> {
    return std::make_unique<QuestDecode>(setup);
  };
  return m;
}

}  // namespace deltainfer::cuda::methods
