#include "backend/cuda/cuda_transformer.h"

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <iterator>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "backend/cpu/ops.h"
#include "backend/cuda/cuda_attention.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_handles.h"
#include "backend/cuda/cuda_weights.h"
#include "backend/cuda/device_buffer.h"
#include "backend/cuda/elementwise.h"
#include "backend/cuda/kv_dtype_support.h"
#include "backend/cuda/kv_fp8_append.h"
#include "backend/cuda/kv_fp8_stage.h"
#include "backend/cuda/kv_pools.h"
#include "backend/cuda/paged_kv.h"
#include "backend/cuda/gemm.h"
#include "backend/cuda/memory_plan.h"
#include "backend/cuda/methods/cuda_decode_method.h"
#include "backend/cuda/prefill_attention.h"
#include "backend/cuda/page_states.h"
#include "backend/cuda/rank_collectives.h"
#include "backend/cuda/sampling.h"
#include "backend/cuda/step_buffers.h"
#include "backend/cuda/token_nll.h"
#include "core/error.h"
#include "model/shard_plan.h"
#include "runtime/step_layout.h"

namespace deltainfer::cuda {
namespace {

using bf16 = __nv_bfloat16;

size_t as_size(int64_t value) { return static_cast<size_t>(value); }

// Decode graphs are captured per power-of-two context bucket: the split-KV plan depends on the
// longest context the graph may see.
int64_t decode_bucket(int64_t kv_len, int64_t capacity) {
  int64_t bucket = 256;
  while (bucket < kv_len) bucket *= 2;
  return std::min(bucket, capacity);
}

int64_t aligned_chunk(int64_t requested, int64_t capacity, int64_t alignment) {
  const int64_t chunk = std::min<int64_t>(std::max<int64_t>(1, requested), capacity);
  return std::max(alignment, chunk / alignment * alignment);
}

// What a decode step hands back for its rows: logits, a token chosen on the device, or both. A
// graph is captured per (method, slots, context bucket, outputs).
struct DecodeOutputs {
  bool logits = false;
  bool sampled = false;
  runtime::DeviceSampling sampling;
};

using GraphKey = std::tuple<int, int, int64_t, bool, bool, float, int, float, uint64_t>;

class CudaTransformer final : public runtime::Transformer {
 public:
  // `rank`: which part of a tensor-parallel group this is (docs/notes/tensor-parallel.md); the
  // default is the whole model, with no collectives.
  CudaTransformer(const model::ModelSource& source, const runtime::BackendOptions& options, const RankContext& rank)
      : full_config_(source.config()),
        shard_(full_config_, rank.rank, rank.world),
        collectives_(rank.collectives),
        config_(shard_.local_config()),
        capacity_(options.capacity),
        max_batch_(std::max(1, options.max_batch)),
        pages_per_sequence_(pages_for_positions(options.capacity)),
        pool_pages_(runtime::requested_pool_pages(options)),
        kv_dtype_(options.kv_dtype),
        sequences_(checked_pool_pages(pool_pages_), options.capacity, config_.vocab_size) {
    static_assert(kKvPageSize == kKvPageTokens, "the CUDA kernels' page is the engine's page");
    check_method(options.attention, /*default_method=*/true);
    if (config_.head_dim != 64 && config_.head_dim != 128) {
      throw_input_error("the CUDA backend supports head dim 64 and 128 (this model has {})", config_.head_dim);
    }
    const int64_t alignment = options.attention.prefill.delta ? options.attention.prefill.gamma : 1;
    chunk_ = aligned_chunk(options.prefill_chunk, capacity_, alignment);
    max_rows_ = chunk_ + max_batch_ - 1;  // a full prefill chunk beside the decode steps of the others
    MemoryRequest request;
    request.max_context = capacity_;
    request.max_batch = max_batch_;
    request.kv_pages = device_pages();
    request.prefill_chunk = static_cast<int>(max_rows_);
    request.kv_dtype = kv_dtype_;
    request.world = shard_.world();
    request.rank_vocab_columns = shard_.vocab_stride();
    request.page_state_bytes_per_page = page_state_bytes_per_page(options.attention.decode, config_);
    // The attention workspaces are sized by the policy's own constructor: allocate them first and
    // count them against the memory that was free before.
    const size_t free_bytes = free_device_bytes();
    methods_.push_back(std::make_unique<CudaAttention>(options.attention, config_, capacity_, chunk_, max_batch_));
    method_users_.push_back(0);
    request.attention_bytes = methods_.front()->device_bytes();
    plan_ = plan_memory(config_, request, free_bytes);
    weights_ = CudaWeights::load(source, shard_, stream_.get());
    allocate_state();
    page_states_ = PageStates(config_, key_pools(), static_cast<int>(pages_per_sequence_));
    page_states_.ensure(options.attention.decode);  // counted in the plan (page_state_bytes_per_page)
    default_sequence_ = sequences_.open(options.attention);
    method_of_[default_sequence_] = 0;
    method_users_[0] = 1;
  }

  const model::ModelConfig& config() const override { return full_config_; }
  int64_t capacity() const override { return capacity_; }
  int64_t max_batch_tokens() const override { return max_rows_; }
  int64_t prefill_chunk() const override { return chunk_; }

  runtime::SequenceId open_sequence(const attention::AttentionConfig& method) override {
    check_method(method);
    ensure_page_state(method);
    const int index = method_index(method);
    const runtime::SequenceId id = sequences_.open(method);
    method_of_[id] = index;
    ++method_users_[as_size(index)];
    return id;
  }

  void close_sequence(runtime::SequenceId id) override {
    if (id == default_sequence_) throw_error("the default sequence of the CUDA backend cannot be closed");
    sequences_.close(id);
    page_states_.forget(id);
    const int index = method_of_.at(id);
    method_of_.erase(id);
    if (--method_users_[as_size(index)] == 0 && index != 0) release_method(index);
  }

  // The sequence's page state (Quest's key bounds) is forgotten, so the next step rebuilds it for
  // the new method; DELTA and Tidal select afresh every step.
  void set_sequence_method(runtime::SequenceId id, const attention::AttentionConfig& method) override {
    check_method(method);
    ensure_page_state(method);
    const int index = method_index(method);
    const int previous = method_of_.at(id);
    sequences_.set_method(id, method);
    page_states_.forget(id);
    method_of_[id] = index;
    ++method_users_[as_size(index)];
    if (--method_users_[as_size(previous)] == 0 && previous != 0) release_method(previous);
  }

  int64_t sequence_length(runtime::SequenceId id) const override { return sequences_.at(id).length; }

  void truncate_sequence(runtime::SequenceId id, int64_t length) override {
    sequences_.truncate(id, length);
    page_states_.truncate(id, length);
  }

  runtime::KvUsage kv_usage() const override { return sequences_.usage(); }
  runtime::SequenceId default_sequence() const override { return default_sequence_; }
  bool samples_on_device() const override { return true; }

  std::optional<nlohmann::json> attention_fidelity() override {
    const CudaPrefillFidelity* fidelity = methods_.front()->fidelity();  // the default sequence's method
    if (fidelity == nullptr) return std::nullopt;
    return fidelity->to_json();
  }

  using runtime::Transformer::forward;
  void forward(const runtime::BatchPlan& plan) override {
    check_plan(plan);
    sequences_.reserve(plan, max_rows_);
    runtime::StepLayout layout = layout_step(
        plan, sequences_, pages_per_sequence_, [this](runtime::SequenceId id) { return method_of_.at(id); });
    DecodeOutputs outputs;
    const bool graphed = graphable(plan, layout, outputs);
    // A graphed step runs at its batch-size bucket: one graph serves every size of the bucket.
    if (graphed) pad_decode_slots(layout, runtime::decode_slot_bucket(layout.slots(), max_batch_), scratch_page());
    localize_tokens(layout);
    step_.stage(layout);
    rebuild_page_state(plan, /*after_step=*/false);
    if (graphed) {
      run_graphed_decode(layout, outputs);
    } else {
      run_eager(plan, layout);
    }
    CUDA_CHECK(cudaStreamSynchronize(stream_.get()));
    sequences_.commit(plan);
    hand_back_decode_outputs(plan, layout);
    rebuild_page_state(plan, /*after_step=*/true);
  }

  // The default sequence's tokens, then the token that follows under `sampling`, chosen on the
  // device: the last prefill chunk or the decode step carries the sampling rule.
  int32_t forward_and_sample(const int32_t* tokens, int64_t n, const runtime::DeviceSampling& sampling) override {
    if (n <= 0) throw_error("forward_and_sample() needs at least one token");
    const int64_t start_length = sequences_.at(default_sequence_).length;
    int32_t chosen = -1;
    if (n == 1 && start_length > 0) {
      runtime::BatchEntry step = runtime::decode_entry(default_sequence_, tokens);
      step.sampling = &sampling;
      step.sampled = &chosen;
      forward(runtime::BatchPlan{{step}});
      return chosen;
    }
    for (int64_t start = 0; start < n; start += chunk_) {
      runtime::BatchEntry chunk =
          runtime::prefill_entry(default_sequence_, tokens + start, std::min(chunk_, n - start), start_length + n);
      if (start + chunk.n_tokens == n) {
        chunk.sampling = &sampling;
        chunk.sampled = &chosen;
      }
      forward(runtime::BatchPlan{{chunk}});
      report_prefill_progress(start + chunk.n_tokens, n);
    }
    return chosen;
  }

 private:
  // The pool on the device holds one page more than the sequences share: the scratch page that
  // a decode step's padding slots read and write (runtime::pad_decode_slots).
  int64_t device_pages() const { return pool_pages_ + 1; }
  int32_t scratch_page() const { return static_cast<int32_t>(pool_pages_); }

  static int32_t checked_pool_pages(int64_t pages) {
    if (pages <= 0 || pages >= INT32_MAX) throw_input_error("a KV pool of {} pages", pages);
    return static_cast<int32_t>(pages);
  }

  // --fidelity instruments the default sequence's method (attention_fidelity.h), on one GPU.
  void check_method(const attention::AttentionConfig& method, bool default_method = false) const {
    if (method.instrument && (!default_method || shard_.world() > 1)) {
      throw_input_error("--fidelity on --backend cuda instruments the default sequence on one GPU only");
    }
    method.validate(config_.n_layers);
    require_kv_dtype_kernels(method, kv_dtype_);
  }

  // The CudaAttention of `method`: one per distinct method in use (its decode selection and
  // workspaces serve one group of sequences per step). A new method's workspaces are allocated
  // here, beside the memory plan, and freed when its last sequence closes (the default method's
  // stay: they are part of the plan).
  int method_index(const attention::AttentionConfig& method) {
    const std::string key = attention::describe(method);
    size_t free_slot = methods_.size();
    for (size_t i = 0; i < methods_.size(); ++i) {
      if (methods_[i] == nullptr) {
        free_slot = std::min(free_slot, i);
      } else if (attention::describe(methods_[i]->config()) == key) {
        return static_cast<int>(i);
      }
    }
    std::unique_ptr<CudaAttention> created;
    try {
      created = std::make_unique<CudaAttention>(method, config_, capacity_, chunk_, max_batch_);
    } catch (const InputError&) {
      throw;
    } catch (const Error& e) {
      throw_input_error("the workspaces of attention method \"{}\" do not fit in GPU memory: {}", key, e.what());
    }
    if (free_slot == methods_.size()) {
      methods_.push_back(nullptr);
      method_users_.push_back(0);
    }
    methods_[free_slot] = std::move(created);
    return static_cast<int>(free_slot);
  }

  // Frees a method no sequence uses any more, and the decode graphs captured with it.
  void release_method(int index) {
    for (auto graph = graphs_.begin(); graph != graphs_.end();) {
      graph = std::get<0>(graph->first) == index ? graphs_.erase(graph) : std::next(graph);
    }
    methods_[as_size(index)].reset();
  }

  void check_plan(const runtime::BatchPlan& plan) const {
    if (static_cast<int64_t>(plan.entries.size()) > max_batch_) {
      throw_input_error("a batch of {} sequences exceeds the {} this backend was planned for (--max-batch)",
                        plan.entries.size(), max_batch_);
    }
    for (const runtime::BatchEntry& entry : plan.entries) {
      const int64_t first_pos = sequences_.at(entry.sequence).length;  // throws for a sequence not open
      const CudaAttention& method = *methods_.at(static_cast<size_t>(method_of_.at(entry.sequence)));
      const int64_t alignment = method.required_chunk_alignment();
      if (!entry.decode && first_pos % alignment != 0) {
        throw_input_error("a prefill chunk of sequence {} starts at position {}, not a multiple of its γ {}",
                          entry.sequence, first_pos, alignment);
      }
      if (entry.sampling != nullptr && entry.sampling->temperature != 0.0f && plan.entries.size() != 1) {
        throw_error("the device samples (temperature > 0) in batches of one entry; take the logits instead");
      }
    }
  }

  // Page state of the sequences whose method keeps one (Quest's key bounds): before a step,
  // whatever a truncation left stale is rebuilt; after it, a decode step has folded its key in
  // inside the step, a prefill chunk's keys are folded in now. No-ops for the other methods.
  void rebuild_page_state(const runtime::BatchPlan& plan, bool after_step) {
    for (const runtime::BatchEntry& entry : plan.entries) {
      const attention::DecodeConfig& decode = methods_[as_size(method_of_.at(entry.sequence))]->config().decode;
      const runtime::Sequence& sequence = sequences_.at(entry.sequence);
      if (after_step && entry.decode) {
        page_states_.appended(decode, entry.sequence, sequence.length);
      } else {
        page_states_.rebuild_stale(decode, entry.sequence, sequence.pages.data(), sequence.length, stream_.get());
      }
    }
  }

  // Page state beside the pool for the layers where `method` keeps one (none for most methods).
  void ensure_page_state(const attention::AttentionConfig& method) {
    try {
      page_states_.ensure(method.decode);
    } catch (const InputError&) {
      throw;
    } catch (const Error& e) {
      throw_input_error("the page state of \"{}\" does not fit in GPU memory: {}", attention::describe(method), e.what());
    }
  }

  bool fp8_cache() const { return kv_dtype_ == KvDtype::Fp8E4m3; }

  void allocate_state() {
    kv_ = KvPools(kv_dtype_, config_.n_layers, device_pages(), config_.n_kv_heads, config_.head_dim);
    step_ = StepBuffers(max_rows_, max_batch_, pages_per_sequence_, /*page_runs=*/fp8_cache());
    if (fp8_cache()) allocate_fp8_staging();

    std::vector<float> inv_freq(as_size(config_.head_dim / 2));
    backend::cpu::rope_inverse_frequencies(config_, inv_freq.data());
    inv_freq_ = to_device(inv_freq);

    const size_t rows = as_size(max_rows_);
    x_ = DeviceBuffer<float>(rows * as_size(config_.d_model));
    normed_ = DeviceBuffer<bf16>(rows * as_size(config_.d_model));
    q_ = DeviceBuffer<bf16>(rows * as_size(config_.q_dim()));
    if (CudaWeights::fused_qkv(config_)) {
      qkv_ = DeviceBuffer<bf16>(rows * as_size(config_.q_dim() + 2 * config_.kv_dim()));
    } else {
      k_ = DeviceBuffer<bf16>(rows * as_size(config_.kv_dim()));
      v_ = DeviceBuffer<bf16>(rows * as_size(config_.kv_dim()));
    }
    attn_ = DeviceBuffer<bf16>(rows * as_size(config_.q_dim()));
    gate_up_ = DeviceBuffer<bf16>(rows * 2 * as_size(config_.ffn_dim));
    act_ = DeviceBuffer<bf16>(rows * as_size(config_.ffn_dim));
    logit_rows_ = logit_buffer_rows(max_rows_, max_batch_);
    logits_ = DeviceBuffer<float>(as_size(logit_rows_) * as_size(config_.vocab_size));
    nll_targets_ = DeviceBuffer<int32_t>(rows);  // indexed by step row, as x_ (counted in the plan's workspaces)
    nlls_ = DeviceBuffer<double>(rows);
    if (collectives_ != nullptr) {
      rank_logits_ = DeviceBuffer<float>(as_size(logit_rows_) * as_size(shard_.vocab_stride()));
      gathered_logits_ = DeviceBuffer<float>(as_size(shard_.world()) * rank_logits_.size());
    }
    chosen_ = DeviceBuffer<int32_t>(as_size(max_batch_));
    pinned_chosen_ = std::make_unique<PinnedBuffer<int32_t>>(as_size(max_batch_));
    pinned_logits_ = std::make_unique<PinnedBuffer<float>>(as_size(max_batch_) * as_size(config_.vocab_size));
  }

  // What an FP8 cache needs beside its pools (counted in the plan's kv_staging_bytes): the bf16
  // staging pool of one sequence's pages with its identity page table, and the rotated K/V rows
  // fp8_append_kv quantizes.
  void allocate_fp8_staging() {
    const size_t page_values = as_size(config_.n_kv_heads) * kKvPageSize * as_size(config_.head_dim);
    stage_k_ = DeviceBuffer<bf16>(as_size(pages_per_sequence_) * page_values);
    stage_v_ = DeviceBuffer<bf16>(as_size(pages_per_sequence_) * page_values);
    std::vector<int32_t> identity(as_size(pages_per_sequence_));
    for (size_t p = 0; p < identity.size(); ++p) identity[p] = static_cast<int32_t>(p);
    identity_pages_ = to_device(identity);
    k_rows_ = DeviceBuffer<bf16>(as_size(max_rows_) * as_size(config_.kv_dim()));
    v_rows_ = DeviceBuffer<bf16>(as_size(max_rows_) * as_size(config_.kv_dim()));
  }

  // Every layer's K pool as Quest's bounds read it (any dtype; its table and lengths unused).
  std::vector<PagedKv> key_pools() const {
    std::vector<PagedKv> pools;
    for (int i = 0; i < config_.n_layers; ++i) pools.push_back(kv_.layer(i));
    return pools;
  }

  void project_qkv_apart(const LayerWeights& w, int64_t n, cudaStream_t s) {
    const int d = config_.d_model, q_dim = config_.q_dim(), kv_dim = config_.kv_dim();
    const int rows = static_cast<int>(n);
    gemm_.run(normed_.data(), w.wq.data(), q_.data(), rows, q_dim, d, s);
    gemm_.run(normed_.data(), w.wk.data(), k_.data(), rows, kv_dim, d, s);
    gemm_.run(normed_.data(), w.wv.data(), v_.data(), rows, kv_dim, d, s);
    if (config_.qkv_bias) {
      add_bias(q_.data(), w.bq.data(), n, q_dim, s);
      add_bias(k_.data(), w.bk.data(), n, kv_dim, s);
      add_bias(v_.data(), w.bv.data(), n, kv_dim, s);
    }
    if (config_.qk_norm) {
      rmsnorm(q_.data(), w.q_norm.data(), q_.data(), n * config_.n_heads, config_.head_dim, config_.rms_eps, s);
      rmsnorm(k_.data(), w.k_norm.data(), k_.data(), n * config_.n_kv_heads, config_.head_dim, config_.rms_eps, s);
    }
  }

  // One transformer layer over the step's `n` rows of x_; each row's key and value go to the page
  // of its position in its slot's page table.
  template <typename Attention>
  void layer(int i, int64_t n, Attention&& attention) {
    cudaStream_t s = stream_.get();
    const LayerWeights& w = weights_.layers[as_size(i)];
    const int d = config_.d_model, q_dim = config_.q_dim(), kv_dim = config_.kv_dim(), ffn = config_.ffn_dim;
    const int rows = static_cast<int>(n);
    rmsnorm(x_.data(), w.attn_norm.data(), normed_.data(), n, d, config_.rms_eps, s);
    RopeAppendArgs rope;
    if (CudaWeights::fused_qkv(config_)) {
      const int qkv_dim = q_dim + 2 * kv_dim;
      gemm_.run(normed_.data(), w.wqkv.data(), qkv_.data(), rows, qkv_dim, d, s);
      if (config_.qkv_bias) add_bias(qkv_.data(), w.bqkv.data(), n, qkv_dim, s);
      rope.q = qkv_.data();
      rope.k = qkv_.data() + q_dim;
      rope.v = qkv_.data() + q_dim + kv_dim;
      rope.q_stride = rope.k_stride = rope.v_stride = qkv_dim;
      rope.q_out = q_.data();
    } else {
      project_qkv_apart(w, n, s);
      rope.q = q_.data();
      rope.k = k_.data();
      rope.v = v_.data();
      rope.q_stride = q_dim;
      rope.k_stride = kv_dim;
      rope.v_stride = kv_dim;
    }
    rope.n_tokens = rows;
    rope.n_heads = config_.n_heads;
    rope.n_kv_heads = config_.n_kv_heads;
    rope.head_dim = config_.head_dim;
    rope.positions = step_.positions();
    rope.token_seq = step_.row_slot();
    rope.page_table = step_.page_table(0);
    rope.page_table_stride = static_cast<int>(pages_per_sequence_);
    rope.inv_freq = inv_freq_.data();
    rope.interleaved = config_.rope_style == model::RopeStyle::Interleaved;
    if (fp8_cache()) {
      rope.k_rows = k_rows_.data();
      rope.v_rows = v_rows_.data();
      rope_append_kv(rope, s);
      append_fp8(i, s);
    } else {
      rope.k_pool = kv_.k_bf16(i);
      rope.v_pool = kv_.v_bf16(i);
      rope_append_kv(rope, s);
    }
    attention(i);
    gemm_.run(attn_.data(), w.wo.data(), x_.data(), rows, d, q_dim, /*accumulate=*/holds_residual(), s);
    reduce_residual(n);
    rmsnorm(x_.data(), w.ffn_norm.data(), normed_.data(), n, d, config_.rms_eps, s);
    gemm_.run(normed_.data(), w.w_gate_up.data(), gate_up_.data(), rows, 2 * ffn, d, s);
    swiglu(gate_up_.data(), gate_up_.data() + ffn, 2 * int64_t{ffn}, act_.data(), n, ffn, s);
    gemm_.run(act_.data(), w.w_down.data(), x_.data(), rows, d, ffn, /*accumulate=*/holds_residual(), s);
    reduce_residual(n);
  }

  // The step's rotated K/V rows into their FP8 pages (quantized per page run: kv_fp8_append.h).
  void append_fp8(int i, cudaStream_t s) {
    Fp8AppendArgs append;
    append.k = k_rows_.data();
    append.v = v_rows_.data();
    append.runs = step_.page_runs();
    append.n_runs = step_.page_run_count();
    append.page_table = step_.page_table(0);
    append.page_table_stride = static_cast<int>(pages_per_sequence_);
    append.n_kv_heads = config_.n_kv_heads;
    append.head_dim = config_.head_dim;
    append.k_codes = kv_.k_codes(i);
    append.v_codes = kv_.v_codes(i);
    append.k_scales = kv_.k_scales(i);
    append.v_scales = kv_.v_scales(i);
    fp8_append_kv(append, s);
  }

  LayerKv layer_kv(int i, int slot, const attention::DecodeConfig& decode) {
    const PagedKv pools = kv_.layer(i);
    LayerKv kv;
    kv.k_pool = pools.k_pool;
    kv.v_pool = pools.v_pool;
    kv.dtype = pools.dtype;
    kv.k_scales = pools.k_scales;
    kv.v_scales = pools.v_scales;
    kv.page_table = step_.page_table(slot);
    kv.page_table_stride = static_cast<int>(pages_per_sequence_);
    kv.num_pages = pools.num_pages;
    kv.page_state = page_states_.layer(decode, i);
    return kv;
  }

  // An FP8 cache's prefill: the pages holding keys [0, kv_len) of the slot's sequence, dequantized
  // into the bf16 staging pool (kv_fp8_stage.h), which the bf16 prefill kernels read through the
  // identity page table (row 0, one sequence at a time).
  VarlenPrefillArgs staged_prefill_batch(int i, int slot, int64_t kv_len) {
    Fp8StageArgs stage;
    stage.source = kv_.layer(i);
    stage.pages = step_.page_table(slot);  // staging page p is the sequence's logical page p
    stage.n_pages = static_cast<int>(pages_for_positions(kv_len));
    stage.k_stage = stage_k_.data();
    stage.v_stage = stage_v_.data();
    fp8_stage_pages(stage, stream_.get());
    VarlenPrefillArgs args = layer_prefill_batch(i);
    const int pages = static_cast<int>(pages_per_sequence_);
    args.kv = bf16_sequence_kv(stage_k_.data(), stage_v_.data(), pages, config_.n_kv_heads, config_.head_dim,
                               identity_pages_.data(), pages * kKvPageSize);
    return args;
  }

  // Layer i's attention for every decode group (one batched call each) and prefill chunk.
  void attention_layer(int i, const runtime::StepLayout& layout, int64_t bucket) {
    cudaStream_t s = stream_.get();
    const int64_t q_dim = config_.q_dim();
    for (const runtime::DecodeGroup& group : layout.decode_groups) {
      CudaAttention& method = *methods_[as_size(group.method)];
      const int32_t* kv_lens = step_.kv_lens() + group.first_slot;
      const attention::DecodeConfig& decode = method.config().decode;
      // The layer's new keys are in the pool: a method's page state (Quest's bounds) folds them in before it selects.
      page_states_.append(decode, i, step_.page_table(group.first_slot), static_cast<int>(pages_per_sequence_), kv_lens,
                          static_cast<int>(bucket), group.slots, s);
      method.decode(i, q_.data() + group.first_slot * q_dim, kv_lens, static_cast<int>(bucket), group.slots,
                    layer_kv(i, group.first_slot, decode), attn_.data() + group.first_slot * q_dim, s);
    }
    // Chunks of methods that prefill alike (CudaAttention::prefill_key) share one prefill_batch call.
    struct PrefillGroup {
      CudaAttention* method = nullptr;
      std::vector<VarlenChunk> chunks;
      std::vector<int64_t> prompt_ends;
    };
    std::map<std::string, PrefillGroup> groups;
    for (const runtime::PrefillItem& item : layout.prefills) {
      CudaAttention& method = *methods_[as_size(item.method)];
      const VarlenChunk chunk{static_cast<int>(item.first_row), static_cast<int>(item.n_tokens),
                              static_cast<int>(item.first_pos), static_cast<int>(item.first_pos + item.n_tokens),
                              item.slot, 0};
      if (fp8_cache()) {  // one sequence's pages at a time through the staging pool (its table's row 0)
        VarlenChunk staged = chunk;
        staged.page_row = 0;
        method.prefill_batch(i, staged_prefill_batch(i, item.slot, item.first_pos + item.n_tokens), {staged},
                             {item.prompt_end}, s);
        continue;
      }
      PrefillGroup& group = groups[method.prefill_key()];
      if (group.method == nullptr) group.method = &method;
      group.chunks.push_back(chunk);
      group.prompt_ends.push_back(item.prompt_end);
    }
    for (const auto& entry : groups) {
      const PrefillGroup& group = entry.second;
      group.method->prefill_batch(i, layer_prefill_batch(i), group.chunks, group.prompt_ends, s);
    }
  }

  // Layer i's packed rows, pools and page tables (a row per slot), as a prefill batch sees them.
  // An FP8 cache's pools are FP8 here, which the prefill kernels refuse: its prefill sets its
  // staging pool (staged_prefill_batch).
  VarlenPrefillArgs layer_prefill_batch(int i) {
    VarlenPrefillArgs args;
    args.q = q_.data();
    args.out = attn_.data();
    args.kv = kv_.layer(i);
    args.kv.page_table = step_.page_table(0);
    args.kv.page_table_stride = static_cast<int>(pages_per_sequence_);
    args.kv.batch = max_batch_;
    args.kv.max_kv_len = static_cast<int>(pages_per_sequence_) * kKvPageSize;  // what a row holds
    return args;
  }

  // Embedding, every layer, nothing after: the residual stream of the step's rows is in x_.
  void run_layers(const runtime::StepLayout& layout) {
    cudaStream_t s = stream_.get();
    step_.upload(s);
    embedding_gather(step_.tokens(), weights_.token_embd.data(), x_.data(), static_cast<int>(layout.rows()),
                     config_.d_model, static_cast<int>(shard_.vocab_stride() + 1), s);
    if (collectives_ != nullptr) collectives_->sum(shard_.rank(), x_.data(), layout.rows() * config_.d_model, s);
    const int64_t bucket = context_bucket(layout);
    for (int i = 0; i < config_.n_layers; ++i) {
      layer(i, layout.rows(), [&](int index) { attention_layer(index, layout, bucket); });
    }
  }

  // The split-KV decode kernels' shape: the bucket of the step's longest decode sequence.
  int64_t context_bucket(const runtime::StepLayout& layout) const {
    int64_t longest = 1;
    for (int slot = 0; slot < static_cast<int>(layout.decode_rows); ++slot) {
      longest = std::max<int64_t>(longest, layout.kv_lens[as_size(slot)]);
    }
    return decode_bucket(longest, capacity_);
  }

  // Final norm and output projection of `rows` rows of x_ starting at `first_row` into logits_.
  void project_logits(int64_t first_row, int64_t rows) {
    cudaStream_t s = stream_.get();
    const int d = config_.d_model;
    rmsnorm(x_.data() + first_row * d, weights_.output_norm.data(), normed_.data(), rows, d, config_.rms_eps, s);
    const int stride = static_cast<int>(shard_.vocab_stride());
    float* rank_logits = collectives_ != nullptr ? rank_logits_.data() : logits_.data();
    gemm_.run(normed_.data(), weights_.output_matrix(config_), rank_logits, static_cast<int>(rows), stride, d,
              /*accumulate=*/false, s);
    if (collectives_ != nullptr) gather_logits(rows);
  }

  // ---- Tensor-parallel hooks (no-ops at degree 1) ----

  // The residual stream is whole on every rank; the row-parallel projections (o, down) give each
  // rank a partial sum. Rank 0 adds its part to the residual, the others overwrite it with theirs,
  // and the f32 all-reduce (sum) leaves residual + every part on every rank.
  bool holds_residual() const { return shard_.rank() == 0; }

  void reduce_residual(int64_t rows) {
    if (collectives_ != nullptr) collectives_->sum(shard_.rank(), x_.data(), rows * config_.d_model, stream_.get());
  }

  // Token ids as rows of this rank's embedding part: a token another rank holds reads the zero row
  // past the rank's padded part (vocab_stride()), so the all-reduce after the lookup sums one embedding.
  void localize_tokens(runtime::StepLayout& layout) const {
    const model::IndexRange mine = shard_.vocab_rows();
    const auto zero_row = static_cast<int32_t>(shard_.vocab_stride());
    for (int32_t& token : layout.tokens) {
      token = token >= mine.begin && token < mine.end() ? static_cast<int32_t>(token - mine.begin) : zero_row;
    }
  }

  // Every rank's [rows][vocab_stride] logits to every rank, then each rank's own vocabulary columns
  // into logits_ [rows][vocab]: the device argmax and sampling then see the whole vocabulary.
  void gather_logits(int64_t rows) {
    cudaStream_t s = stream_.get();
    const int64_t block = rows * shard_.vocab_stride();
    collectives_->all_gather(shard_.rank(), rank_logits_.data(), gathered_logits_.data(), block, s);
    for (int r = 0; r < shard_.world(); ++r) {
      const model::IndexRange part = shard_.vocab_rows_of(r);
      CUDA_CHECK(cudaMemcpy2DAsync(logits_.data() + part.begin, as_size(config_.vocab_size) * sizeof(float),
                                   gathered_logits_.data() + r * block, as_size(shard_.vocab_stride()) * sizeof(float),
                                   as_size(part.count) * sizeof(float), as_size(rows), cudaMemcpyDeviceToDevice, s));
    }
  }

  // Chooses tokens for `rows` rows of logits_ into chosen_[first_slot..]; a draw is keyed by its
  // row's position (device memory), so a replayed graph draws afresh each step.
  void choose_tokens(const runtime::DeviceSampling& sampling, int64_t logits_row, int rows, int first_slot,
                     const int32_t* positions) {
    cudaStream_t s = stream_.get();
    const float* logits = logits_.data() + logits_row * config_.vocab_size;
    if (sampling.temperature == 0.0f) {
      argmax(logits, rows, config_.vocab_size, chosen_.data() + first_slot, s);
    } else {
      SamplingConfig config;
      config.temperature = sampling.temperature;
      config.top_k = sampling.top_k;
      config.top_p = sampling.top_p;
      config.seed = sampling.seed;
      config.philox_offset_device = positions;
      sample(logits, rows, config_.vocab_size, config, chosen_.data() + first_slot, s);
    }
    CUDA_CHECK(cudaMemcpyAsync(pinned_chosen_->data() + first_slot, chosen_.data() + first_slot,
                               as_size(rows) * sizeof(int32_t), cudaMemcpyDeviceToHost, s));
  }

  // The decode rows' outputs into the pinned buffers (slot s = row s); capturable.
  void decode_outputs(int64_t decode_rows, const DecodeOutputs& outputs) {
    if (decode_rows == 0 || (!outputs.logits && !outputs.sampled)) return;
    cudaStream_t s = stream_.get();
    project_logits(0, decode_rows);
    if (outputs.logits) {
      CUDA_CHECK(cudaMemcpyAsync(pinned_logits_->data(), logits_.data(),
                                 as_size(decode_rows) * as_size(config_.vocab_size) * sizeof(float),
                                 cudaMemcpyDeviceToHost, s));
    }
    if (outputs.sampled) {
      choose_tokens(outputs.sampling, 0, static_cast<int>(decode_rows), 0, step_.positions());
    }
  }

  // The NLLs of a TokenNlls entry's rows [first_row, first_row + n) of the step: their logits go
  // through logits_ in blocks of logit_rows_ and are reduced there (token_nll.h); n targets go up
  // and n doubles come back, straight to the caller, instead of n rows of logits.
  void token_nll_outputs(const runtime::BatchEntry& entry, int64_t first_row, int64_t n) {
    cudaStream_t s = stream_.get();
    CUDA_CHECK(cudaMemcpyAsync(nll_targets_.data() + first_row, entry.targets, as_size(n) * sizeof(int32_t),
                               cudaMemcpyHostToDevice, s));
    for (int64_t row = first_row; row < first_row + n; row += logit_rows_) {
      const int64_t rows = std::min(logit_rows_, first_row + n - row);
      project_logits(row, rows);
      token_nll(logits_.data(), static_cast<int>(rows), config_.vocab_size, nll_targets_.data() + row,
                nlls_.data() + row, s);
    }
    CUDA_CHECK(cudaMemcpyAsync(entry.nlls_out, nlls_.data() + first_row, as_size(n) * sizeof(double),
                               cudaMemcpyDeviceToHost, s));
  }

  // A prefill chunk's logits (copied straight to the caller), its token NLLs, or its next token
  // (to the pinned slot).
  void prefill_outputs(const runtime::BatchEntry& entry, const runtime::PrefillItem& item) {
    cudaStream_t s = stream_.get();
    if (entry.logits == runtime::LogitsFor::TokenNlls) token_nll_outputs(entry, item.first_row, item.n_tokens);
    const int64_t wanted = runtime::logit_rows(entry);
    if (wanted > 0) {
      const int64_t first = item.first_row + item.n_tokens - wanted;
      const size_t vocab = as_size(config_.vocab_size);
      for (int64_t row = first; row < first + wanted; row += logit_rows_) {
        const int64_t rows = std::min(logit_rows_, first + wanted - row);
        project_logits(row, rows);
        CUDA_CHECK(cudaMemcpyAsync(entry.logits_out + as_size(row - first) * vocab, logits_.data(),
                                   as_size(rows) * vocab * sizeof(float), cudaMemcpyDeviceToHost, s));
      }
    }
    if (entry.sampling != nullptr) {
      const int64_t last = item.first_row + item.n_tokens - 1;
      project_logits(last, 1);
      choose_tokens(*entry.sampling, 0, 1, item.slot, step_.positions() + last);
    }
  }

  DecodeOutputs decode_outputs_of(const runtime::BatchPlan& plan) const {
    DecodeOutputs outputs;
    for (const runtime::BatchEntry& entry : plan.entries) {
      if (!entry.decode) continue;
      outputs.logits = outputs.logits || runtime::logit_rows(entry) > 0;
      if (entry.sampling != nullptr) {
        outputs.sampled = true;
        outputs.sampling = *entry.sampling;
      }
    }
    return outputs;
  }

  // A pure decode step of one method whose entries all ask for the same outputs replays a graph.
  // Token NLLs run eagerly: their targets are not in the step buffers a graph replays from.
  bool graphable(const runtime::BatchPlan& plan, const runtime::StepLayout& layout, DecodeOutputs& outputs) const {
    if (!layout.prefills.empty() || layout.decode_groups.size() != 1) return false;
    outputs = decode_outputs_of(plan);
    for (const runtime::BatchEntry& entry : plan.entries) {
      if (entry.logits == runtime::LogitsFor::TokenNlls) return false;
      if ((runtime::logit_rows(entry) > 0) != outputs.logits) return false;
      if ((entry.sampling != nullptr) != outputs.sampled) return false;
      if (entry.sampling != nullptr && *entry.sampling != outputs.sampling) return false;
    }
    return true;
  }

  void run_eager(const runtime::BatchPlan& plan, const runtime::StepLayout& layout) {
    run_layers(layout);
    decode_outputs(layout.decode_rows, decode_outputs_of(plan));
    for (size_t e = 0; e < plan.entries.size(); ++e) {  // a decode step's row is its slot
      const runtime::BatchEntry& entry = plan.entries[e];
      if (entry.decode && entry.logits == runtime::LogitsFor::TokenNlls) {
        token_nll_outputs(entry, layout.entry_first_row[e], 1);
      }
    }
    for (const runtime::PrefillItem& item : layout.prefills) prefill_outputs(plan.entries[item.entry], item);
  }

  // Replays the step's graph; a key's first step runs eagerly (the GEMM plans are chosen outside
  // the capture) and then captures it.
  void run_graphed_decode(const runtime::StepLayout& layout, const DecodeOutputs& outputs) {
    const runtime::DeviceSampling& d = outputs.sampling;
    const GraphKey key{layout.decode_groups.front().method, layout.slots(), context_bucket(layout),
                       outputs.logits, outputs.sampled, d.temperature, d.top_k, d.top_p, d.seed};
    const auto body = [&] {
      run_layers(layout);
      decode_outputs(layout.decode_rows, outputs);
    };
    const auto found = graphs_.find(key);
    if (found != graphs_.end()) {
      found->second.launch(stream_.get());
      return;
    }
    body();
    CUDA_CHECK(cudaStreamSynchronize(stream_.get()));
    if (graphs_.size() >= kMaxGraphs) graphs_.clear();
    graphs_[key].capture(stream_.get(), body);
  }

  void hand_back_decode_outputs(const runtime::BatchPlan& plan, const runtime::StepLayout& layout) const {
    const size_t vocab = as_size(config_.vocab_size);
    for (size_t e = 0; e < plan.entries.size(); ++e) {
      const runtime::BatchEntry& entry = plan.entries[e];
      const size_t slot = as_size(layout.entry_slot[e]);
      if (entry.decode && runtime::logit_rows(entry) > 0) {
        std::memcpy(entry.logits_out, pinned_logits_->data() + slot * vocab, vocab * sizeof(float));
      }
      if (entry.sampled != nullptr) *entry.sampled = pinned_chosen_->data()[slot];
    }
  }

  static constexpr size_t kMaxGraphs = 256;  // beyond this the cache starts over (each holds no buffers)

  model::ModelConfig full_config_;
  model::ShardPlan shard_;
  const RankCollectives* collectives_;  // nullptr at degree 1: no collective calls
  model::ModelConfig config_;           // this rank's heads, KV heads and MLP columns
  int64_t capacity_;
  int max_batch_;
  int64_t pages_per_sequence_;
  int64_t pool_pages_;
  KvDtype kv_dtype_;
  int64_t chunk_ = 1;
  int64_t max_rows_ = 1;
  int64_t logit_rows_ = 1;
  runtime::KvSequences sequences_;
  runtime::SequenceId default_sequence_ = 0;
  std::map<runtime::SequenceId, int> method_of_;
  std::vector<std::unique_ptr<CudaAttention>> methods_;  // null where a released method was
  std::vector<int> method_users_;                        // open sequences per method
  MemoryPlan plan_;
  CudaStream stream_;
  Gemm gemm_;

  CudaWeights weights_;
  KvPools kv_;
  // FP8 cache only (allocate_fp8_staging).
  DeviceBuffer<bf16> stage_k_, stage_v_, k_rows_, v_rows_;
  DeviceBuffer<int32_t> identity_pages_;
  PageStates page_states_;  // beside the pools, for methods that keep per-page state (Quest's key bounds)
  StepBuffers step_;
  DeviceBuffer<float> inv_freq_;
  DeviceBuffer<float> x_;
  DeviceBuffer<bf16> normed_, qkv_, q_, k_, v_, attn_, gate_up_, act_;
  DeviceBuffer<float> logits_;
  DeviceBuffer<int32_t> nll_targets_;  // TokenNlls: per step row, the target and its NLL
  DeviceBuffer<double> nlls_;
  DeviceBuffer<float> rank_logits_, gathered_logits_;  // tensor parallel: this rank's vocabulary part, all ranks'
  DeviceBuffer<int32_t> chosen_;
  std::unique_ptr<PinnedBuffer<int32_t>> pinned_chosen_;
  std::unique_ptr<PinnedBuffer<float>> pinned_logits_;
  std::map<GraphKey, DecodeGraph> graphs_;
};

}  // namespace

std::unique_ptr<runtime::Transformer> make_cuda_rank_transformer(const model::ModelSource& source,
                                                               const runtime::BackendOptions& options,
                                                               const RankContext& rank) {
  return std::make_unique<CudaTransformer>(source, options, rank);
}

std::unique_ptr<runtime::Transformer> make_cuda_transformer(const model::ModelSource& source,
                                                          const runtime::BackendOptions& options) {
  if (options.tensor_parallel > 1) return make_tensor_parallel_transformer(source, options);
  return make_cuda_rank_transformer(source, options, RankContext{});
}

}  // namespace deltainfer::cuda
