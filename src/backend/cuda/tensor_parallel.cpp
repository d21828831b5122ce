#include "backend/cuda/tensor_parallel.h"

#include <cuda_runtime_api.h>

#include <exception>
#include <functional>
#include <thread>
#include <vector>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_transformer.h"
#include "core/error.h"
#include "model/shard_plan.h"

#if DELTAINFER_NCCL
#include "backend/cuda/nccl_communicators.h"
#endif

namespace deltainfer::cuda {
namespace {

void check_degree(const model::ModelConfig& config, int world) {
  if (world != 1 && world != 2 && world != 4 && world != 8) {
    throw_input_error("--tensor-parallel {}: the degree is 1, 2, 4 or 8", world);
  }
  (void)model::ShardPlan(config, 0, world);  // refuses a degree the model's heads do not allow
}

#if DELTAINFER_NCCL

// The ranks of one model. Every call that touches device state runs on every rank, each on its own
// thread with its GPU current and its collectives in scope (RankScope: the Δ-layers' selection
// reduces its page scores through it); rank 0's answers are the group's. Each rank gets the same
// plans, so their page allocators, sequences and graphs stay identical.
class TensorParallelTransformer final : public runtime::Transformer {
 public:
  TensorParallelTransformer(const model::ModelSource& source, const runtime::BackendOptions& options)
      : comms_(options.tensor_parallel) {
    const int world = comms_.world();
    ranks_.resize(static_cast<size_t>(world));
    // One rank after another: loading reads the model file, and no collective runs while building.
    for (int r = 0; r < world; ++r) {
      CUDA_CHECK(cudaSetDevice(r));
      ranks_[static_cast<size_t>(r)] = make_cuda_rank_transformer(source, options, RankContext{r, world, &comms_});
    }
    CUDA_CHECK(cudaSetDevice(0));
  }

  ~TensorParallelTransformer() override {
    for (size_t r = 0; r < ranks_.size(); ++r) {
      if (cudaSetDevice(static_cast<int>(r)) == cudaSuccess) ranks_[r].reset();
    }
    cudaSetDevice(0);
  }

  const model::ModelConfig& config() const override { return lead().config(); }
  int64_t capacity() const override { return lead().capacity(); }
  int64_t max_batch_tokens() const override { return lead().max_batch_tokens(); }
  int64_t prefill_chunk() const override { return lead().prefill_chunk(); }

  runtime::SequenceId open_sequence(const attention::AttentionConfig& method) override {
    std::vector<runtime::SequenceId> ids(ranks_.size());
    on_every_rank([&](int r, runtime::Transformer& rank) { ids[static_cast<size_t>(r)] = rank.open_sequence(method); });
    for (runtime::SequenceId id : ids) {
      if (id != ids.front()) throw_error("tensor-parallel ranks opened different sequence ids ({} and {})", ids.front(), id);
    }
    return ids.front();
  }

  void close_sequence(runtime::SequenceId id) override {
    on_every_rank([&](int, runtime::Transformer& rank) { rank.close_sequence(id); });
  }
  int64_t sequence_length(runtime::SequenceId id) const override { return lead().sequence_length(id); }
  void truncate_sequence(runtime::SequenceId id, int64_t length) override {
    on_every_rank([&](int, runtime::Transformer& rank) { rank.truncate_sequence(id, length); });
  }
  runtime::KvUsage kv_usage() const override { return lead().kv_usage(); }
  runtime::SequenceId default_sequence() const override { return lead().default_sequence(); }
  bool samples_on_device() const override { return true; }

  using runtime::Transformer::forward;
  void forward(const runtime::BatchPlan& plan) override {
    std::vector<RankOutputs> scratch(ranks_.size());
    on_every_rank([&](int r, runtime::Transformer& rank) {
      rank.forward(r == 0 ? plan : scratch[static_cast<size_t>(r)].redirect(plan, config().vocab_size));
    });
  }

  int32_t forward_and_sample(const int32_t* tokens, int64_t n, const runtime::DeviceSampling& sampling) override {
    std::vector<int32_t> chosen(ranks_.size());
    on_every_rank([&](int r, runtime::Transformer& rank) {
      chosen[static_cast<size_t>(r)] = rank.forward_and_sample(tokens, n, sampling);
    });
    return chosen.front();
  }

 private:
  // Where a rank other than 0 writes the outputs it computes in step with rank 0 (the logits
  // gather and the device choice are collective, so every rank computes them).
  class RankOutputs {
   public:
    const runtime::BatchPlan& redirect(const runtime::BatchPlan& plan, int vocab) {
      plan_ = plan;
      size_t floats = 0, nlls = 0;
      for (const runtime::BatchEntry& entry : plan.entries) {
        floats += static_cast<size_t>(runtime::logit_rows(entry)) * static_cast<size_t>(vocab);
        nlls += nll_rows(entry);
      }
      logits_.resize(floats);
      nlls_.resize(nlls);
      sampled_.resize(plan.entries.size());
      size_t offset = 0, nll_offset = 0;
      for (size_t e = 0; e < plan_.entries.size(); ++e) {
        runtime::BatchEntry& entry = plan_.entries[e];
        if (entry.logits_out != nullptr) entry.logits_out = logits_.data() + offset;
        if (entry.nlls_out != nullptr) entry.nlls_out = nlls_.data() + nll_offset;
        if (entry.sampled != nullptr) entry.sampled = &sampled_[e];
        offset += static_cast<size_t>(runtime::logit_rows(entry)) * static_cast<size_t>(vocab);
        nll_offset += nll_rows(entry);
      }
      return plan_;
    }

   private:
    static size_t nll_rows(const runtime::BatchEntry& entry) {
      return entry.logits == runtime::LogitsFor::TokenNlls ? static_cast<size_t>(entry.n_tokens) : 0;
    }

    runtime::BatchPlan plan_;
    std::vector<float> logits_;
    std::vector<double> nlls_;
    std::vector<int32_t> sampled_;
  };

  const runtime::Transformer& lead() const { return *ranks_.front(); }

  // Runs `work` on every rank at once (each blocks in its collectives until all arrive) and
  // rethrows the first rank's failure. Rank failures come from checks that every rank makes alike
  // (a plan that does not fit, a bad method), so all ranks fail together before any collective.
  void on_every_rank(const std::function<void(int, runtime::Transformer&)>& work) {
    std::vector<std::exception_ptr> failures(ranks_.size());
    std::vector<std::thread> threads;
    for (size_t r = 0; r < ranks_.size(); ++r) {
      threads.emplace_back([&, r] {
        try {
          const int rank = static_cast<int>(r);
          CUDA_CHECK(cudaSetDevice(rank));
          const RankScope scope(&comms_, rank);
          work(rank, *ranks_[r]);
        } catch (...) {
          failures[r] = std::current_exception();
        }
      });
    }
    for (std::thread& thread : threads) thread.join();
    for (const std::exception_ptr& failure : failures) {
      if (failure) std::rethrow_exception(failure);
    }
  }

  NcclCommunicators comms_;
  std::vector<std::unique_ptr<runtime::Transformer>> ranks_;
};

#endif

}  // namespace

std::unique_ptr<runtime::Transformer> make_tensor_parallel_transformer(const model::ModelSource& source,
                                                                     const runtime::BackendOptions& options) {
  check_degree(source.config(), options.tensor_parallel);
#if DELTAINFER_NCCL
  return std::make_unique<TensorParallelTransformer>(source, options);
#else
  throw_input_error("--tensor-parallel {}: this build has no NCCL (pip install nvidia-nccl-cu13, then reconfigure)",
                    options.tensor_parallel);
#endif
}

}  // namespace deltainfer::cuda
