#include "backend/cuda/cuda_transformer.h"

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <vector>

#include "backend/cpu/ops.h"
#include "backend/cuda/cuda_attention.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/device_buffer.h"
#include "backend/cuda/elementwise.h"
#include "backend/cuda/gemm.h"
#include "backend/cuda/memory_plan.h"
#include "backend/cuda/quest_decode.h"
#include "backend/cuda/sampling.h"
#include "backend/cuda/synthetic_weights.h"
#include "core/error.h"
#include "io/half.h"

namespace deltainfer::cuda {
namespace {

using bf16 = __nv_bfloat16;

size_t as_size(int64_t value) { return static_cast<size_t>(value); }

// Uploads (or generates, for synthetic models) tensors into bf16 device buffers; several tensors
// may be stacked along their rows into one buffer (one GEMM for gate and up).
class WeightUploader {
 public:
  WeightUploader(const model::ModelSource& source, cudaStream_t stream) : source_(source), stream_(stream) {}

  DeviceBuffer<bf16> load(std::initializer_list<std::string> names) const {
    int64_t total = 0;
    for (const std::string& name : names) total += element_count(name);
    DeviceBuffer<bf16> buffer(as_size(total));
    int64_t offset = 0;
    for (const std::string& name : names) {
      const int64_t count = element_count(name);
      if (source_.is_synthetic()) {
        const std::vector<int64_t> shape = source_.tensor_shape(name);
        fill_synthetic_weights(buffer.data() + offset, count, model::synthetic_tensor_seed(name),
                               model::synthetic_tensor_scale(name, shape.back()), stream_);
      } else {
        upload(name, count, buffer.data() + offset);
      }
      offset += count;
    }
    return buffer;
  }

  DeviceBuffer<bf16> load_if(bool present, const std::string& name) const {
    return present ? load({name}) : DeviceBuffer<bf16>();
  }

 private:
  int64_t element_count(const std::string& name) const {
    int64_t count = 1;
    for (int64_t dim : source_.tensor_shape(name)) count *= dim;
    return count;
  }

  void upload(const std::string& name, int64_t count, bf16* dst) const {
    std::vector<float> values(as_size(count));
    source_.read_f32(name, values.data(), count);
    std::vector<uint16_t> bits(as_size(count));
    for (size_t i = 0; i < bits.size(); ++i) bits[i] = io::f32_to_bf16(values[i]);
    CUDA_CHECK(cudaMemcpy(dst, bits.data(), bits.size() * sizeof(uint16_t), cudaMemcpyHostToDevice));
  }

  const model::ModelSource& source_;
  cudaStream_t stream_;
};

struct LayerWeights {
  // wqkv / bqkv: q, k and v stacked for one GEMM; wq, wk, wv, bq, bk, bv only when per-head q/k
  // norms need them apart.
  DeviceBuffer<bf16> attn_norm, wqkv, bqkv, wq, wk, wv, wo, bq, bk, bv, q_norm, k_norm, ffn_norm, w_gate_up, w_down;
};

class CudaStream {
 public:
  CudaStream() { CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking)); }
  ~CudaStream() { cudaStreamDestroy(stream_); }
  CudaStream(const CudaStream&) = delete;
  CudaStream& operator=(const CudaStream&) = delete;
  cudaStream_t get() const { return stream_; }

 private:
  cudaStream_t stream_ = nullptr;
};

template <typename T>
class PinnedBuffer {
 public:
  explicit PinnedBuffer(size_t count) {
    void* raw = nullptr;
    CUDA_CHECK(cudaMallocHost(&raw, count * sizeof(T)));
    data_ = static_cast<T*>(raw);
  }
  ~PinnedBuffer() { cudaFreeHost(data_); }
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;
  T* data() { return data_; }

 private:
  T* data_ = nullptr;
};

class DecodeGraph {
 public:
  DecodeGraph() = default;
  ~DecodeGraph() {
    if (exec_ != nullptr) cudaGraphExecDestroy(exec_);
    if (graph_ != nullptr) cudaGraphDestroy(graph_);
  }
  DecodeGraph(const DecodeGraph&) = delete;
  DecodeGraph& operator=(const DecodeGraph&) = delete;

  template <typename Body>
  void capture(cudaStream_t stream, Body&& body) {
    CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
    try {
      body();
    } catch (...) {
      cudaGraph_t broken = nullptr;
      cudaStreamEndCapture(stream, &broken);
      if (broken != nullptr) cudaGraphDestroy(broken);
      throw;
    }
    CUDA_CHECK(cudaStreamEndCapture(stream, &graph_));
    CUDA_CHECK(cudaGraphInstantiate(&exec_, graph_, 0));
  }
  void launch(cudaStream_t stream) const { CUDA_CHECK(cudaGraphLaunch(exec_, stream)); }

 private:
  cudaGraph_t graph_ = nullptr;
  cudaGraphExec_t exec_ = nullptr;
};

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

class CudaTransformer final : public runtime::Transformer {
 public:
  CudaTransformer(const model::ModelSource& source, const runtime::BackendOptions& options)
      : config_(source.config()),
        capacity_(options.capacity),
        num_pages_(pages_for_positions(options.capacity)),
        sequences_(static_cast<int32_t>(num_pages_), options.capacity, config_.vocab_size) {
    static_assert(kKvPageSize == kKvPageTokens, "the CUDA kernels' page is the engine's page");
    if (options.kv_pages > num_pages_) {
      throw_input_error("the CUDA backend holds one sequence for now: a KV pool of {} pages is more than its {}",
                        options.kv_pages, num_pages_);
    }
    if (options.attention.instrument) {
      throw_input_error("--fidelity instrumentation runs on the CPU backend only");
    }
    options.attention.validate(config_.n_layers);  // before the layer schedule sizes anything
    if (config_.head_dim != 64 && config_.head_dim != 128) {
      throw_input_error("the CUDA backend supports head dim 64 and 128 (this model has {})", config_.head_dim);
    }
    const int64_t alignment = options.attention.prefill.delta ? options.attention.prefill.gamma : 1;
    chunk_ = aligned_chunk(options.prefill_chunk, capacity_, alignment);
    MemoryRequest request;
    request.max_context = capacity_;
    request.prefill_chunk = static_cast<int>(chunk_);
    request.quest_layers = quest_layer_count(options.attention.decode, config_.n_layers);
    // The attention workspaces are sized by the policy's own constructor: allocate them first and
    // count them against the memory that was free before.
    const size_t free_bytes = free_device_bytes();
    attention_ = std::make_unique<CudaAttention>(options.attention, config_, capacity_, chunk_);
    request.attention_bytes = attention_->device_bytes();
    plan_ = plan_memory(config_, request, free_bytes);
    load_weights(source);
    allocate_state();
    quest_ = QuestBounds(options.attention.decode, config_, k_pool_pointers(), page_table_.data(),
                         static_cast<int>(num_pages_));
    default_sequence_ = sequences_.open(options.attention);
  }

  const model::ModelConfig& config() const override { return config_; }
  int64_t capacity() const override { return capacity_; }
  int64_t max_batch_tokens() const override { return chunk_; }

  runtime::SequenceId open_sequence(const attention::AttentionConfig&) override {
    throw_input_error("the CUDA backend serves one sequence at a time for now (its workspaces and decode graphs are "
                      "planned for one); batched CUDA forward passes are not implemented yet");
  }
  void close_sequence(runtime::SequenceId id) override {
    if (id == default_sequence_) throw_error("the default sequence of the CUDA backend cannot be closed");
    sequences_.close(id);
  }
  int64_t sequence_length(runtime::SequenceId id) const override { return sequences_.at(id).length; }
  void truncate_sequence(runtime::SequenceId id, int64_t length) override {
    sequences_.truncate(id, length);
    cached_ = length;
    quest_.truncate(length);
  }
  runtime::KvUsage kv_usage() const override { return sequences_.usage(); }
  runtime::SequenceId default_sequence() const override { return default_sequence_; }

  using runtime::Transformer::forward;
  void forward(const runtime::BatchPlan& plan) override {
    reserve(plan);
    const runtime::BatchEntry& entry = plan.entries.front();
    float* logits = entry.logits == runtime::LogitsFor::None ? nullptr : entry.logits_out;
    if (entry.decode) {
      decode_step(entry.tokens[0], logits);
    } else {
      const int64_t prompt_end = entry.prompt_end > 0 ? entry.prompt_end : cached_ + entry.n_tokens;
      prefill_chunk(entry.tokens, entry.n_tokens, prompt_end, entry.logits == runtime::LogitsFor::AllTokens, logits);
      quest_.rebuild_stale(cached_, stream_.get());
    }
    sequences_.commit(plan);
  }

  bool samples_on_device() const override { return true; }

  // The next token is chosen from logits_ on the device; only its id comes back.
  int32_t forward_and_sample(const int32_t* tokens, int64_t n, const runtime::DeviceSampling& sampling) override {
    if (n == 1 && cached_ > 0) {
      const runtime::BatchPlan step{{runtime::decode_entry(default_sequence_, tokens)}};
      reserve(step);
      const int32_t chosen = decode_step_sampled(tokens[0], sampling);
      sequences_.commit(step);
      return chosen;
    }
    const int64_t prompt_end = cached_ + n;
    int64_t last_rows = 0;
    for (int64_t start = 0; start < n; start += chunk_) {
      last_rows = std::min(chunk_, n - start);  // the last chunk's rows stay in x_
      forward(runtime::BatchPlan{{runtime::prefill_entry(default_sequence_, tokens + start, last_rows, prompt_end)}});
    }
    project_logits(last_rows - 1, 1);
    choose_token(sampling, positions_.data() + last_rows - 1);
    return fetch_chosen();
  }

 private:
  // Checks the plan and gets its pages; the device page table follows the sequence's pages.
  void reserve(const runtime::BatchPlan& plan) {
    if (plan.entries.size() != 1) throw_error("the CUDA backend runs batches of one entry for now");
    sequences_.reserve(plan, chunk_);
    const std::vector<int32_t>& pages = sequences_.at(default_sequence_).pages;
    if (pages.size() != device_pages_) {
      CUDA_CHECK(cudaMemcpy(page_table_.data(), pages.data(), pages.size() * sizeof(int32_t), cudaMemcpyHostToDevice));
      device_pages_ = pages.size();
    }
  }

  void load_weights(const model::ModelSource& source) {
    const WeightUploader up(source, stream_.get());
    token_embd_ = up.load({"token_embd.weight"});
    output_norm_ = up.load({"output_norm.weight"});
    if (!config_.tied_embeddings) output_ = up.load({"output.weight"});
    layers_.resize(as_size(config_.n_layers));
    for (int i = 0; i < config_.n_layers; ++i) {
      const std::string p = fmt::format("blk.{}.", i);
      LayerWeights& l = layers_[as_size(i)];
      l.attn_norm = up.load({p + "attn_norm.weight"});
      if (fused_qkv()) {
        l.wqkv = up.load({p + "attn_q.weight", p + "attn_k.weight", p + "attn_v.weight"});
        if (config_.qkv_bias) l.bqkv = up.load({p + "attn_q.bias", p + "attn_k.bias", p + "attn_v.bias"});
      } else {
        l.wq = up.load({p + "attn_q.weight"});
        l.wk = up.load({p + "attn_k.weight"});
        l.wv = up.load({p + "attn_v.weight"});
        l.bq = up.load_if(config_.qkv_bias, p + "attn_q.bias");
        l.bk = up.load_if(config_.qkv_bias, p + "attn_k.bias");
        l.bv = up.load_if(config_.qkv_bias, p + "attn_v.bias");
      }
      l.wo = up.load({p + "attn_output.weight"});
      l.q_norm = up.load_if(config_.qk_norm, p + "attn_q_norm.weight");
      l.k_norm = up.load_if(config_.qk_norm, p + "attn_k_norm.weight");
      l.ffn_norm = up.load({p + "ffn_norm.weight"});
      l.w_gate_up = up.load({p + "ffn_gate.weight", p + "ffn_up.weight"});
      l.w_down = up.load({p + "ffn_down.weight"});
    }
    CUDA_CHECK(cudaStreamSynchronize(stream_.get()));
  }

  void allocate_state() {
    const size_t per_layer_pool = as_size(num_pages_) * as_size(config_.n_kv_heads) * kKvPageSize * as_size(config_.head_dim);
    for (int i = 0; i < config_.n_layers; ++i) {
      k_pools_.emplace_back(per_layer_pool);
      v_pools_.emplace_back(per_layer_pool);
    }
    std::vector<int32_t> identity(as_size(num_pages_));
    for (size_t i = 0; i < identity.size(); ++i) identity[i] = static_cast<int32_t>(i);
    page_table_ = to_device(identity);

    std::vector<float> inv_freq(as_size(config_.head_dim / 2));
    backend::cpu::rope_inverse_frequencies(config_, inv_freq.data());
    inv_freq_ = to_device(inv_freq);

    const size_t rows = as_size(chunk_);
    x_ = DeviceBuffer<float>(rows * as_size(config_.d_model));
    normed_ = DeviceBuffer<bf16>(rows * as_size(config_.d_model));
    q_ = DeviceBuffer<bf16>(rows * as_size(config_.q_dim()));
    if (fused_qkv()) {
      qkv_ = DeviceBuffer<bf16>(rows * as_size(config_.q_dim() + 2 * config_.kv_dim()));
    } else {
      k_ = DeviceBuffer<bf16>(rows * as_size(config_.kv_dim()));
      v_ = DeviceBuffer<bf16>(rows * as_size(config_.kv_dim()));
    }
    attn_ = DeviceBuffer<bf16>(rows * as_size(config_.q_dim()));
    gate_up_ = DeviceBuffer<bf16>(rows * 2 * as_size(config_.ffn_dim));
    act_ = DeviceBuffer<bf16>(rows * as_size(config_.ffn_dim));
    logit_rows_ = std::min<int64_t>(chunk_, 256);
    logits_ = DeviceBuffer<float>(as_size(logit_rows_) * as_size(config_.vocab_size));
    tokens_ = DeviceBuffer<int32_t>(rows);
    positions_ = DeviceBuffer<int32_t>(rows);
    step_ = DeviceBuffer<int32_t>(3);
    pinned_step_ = std::make_unique<PinnedBuffer<int32_t>>(3);
    pinned_logits_ = std::make_unique<PinnedBuffer<float>>(as_size(config_.vocab_size));
    chosen_ = DeviceBuffer<int32_t>(1);
    pinned_chosen_ = std::make_unique<PinnedBuffer<int32_t>>(1);

  }

  std::vector<const bf16*> k_pool_pointers() const {
    std::vector<const bf16*> pools;
    for (const DeviceBuffer<bf16>& pool : k_pools_) pools.push_back(pool.data());
    return pools;
  }

  const bf16* output_matrix() const { return config_.tied_embeddings ? token_embd_.data() : output_.data(); }

  // One transformer layer over `n` rows of x_ whose positions are in `positions` (device).
  // One GEMM for q, k and v unless per-head q/k norms (Qwen3) need them in separate buffers.
  bool fused_qkv() const { return !config_.qk_norm; }

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

  template <typename Attention>
  void layer(int i, int64_t n, const int32_t* positions, Attention&& attention) {
    cudaStream_t s = stream_.get();
    const LayerWeights& w = layers_[as_size(i)];
    const int d = config_.d_model, q_dim = config_.q_dim(), kv_dim = config_.kv_dim(), ffn = config_.ffn_dim;
    const int rows = static_cast<int>(n);
    rmsnorm(x_.data(), w.attn_norm.data(), normed_.data(), n, d, config_.rms_eps, s);
    RopeAppendArgs rope;
    if (fused_qkv()) {
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
    rope.positions = positions;
    rope.page_table = page_table_.data();
    rope.page_table_stride = static_cast<int>(num_pages_);
    rope.k_pool = k_pools_[as_size(i)].data();
    rope.v_pool = v_pools_[as_size(i)].data();
    rope.inv_freq = inv_freq_.data();
    rope.style = config_.rope_style;
    rope_append_kv(rope, s);
    attention(i);
    gemm_.run(attn_.data(), w.wo.data(), x_.data(), rows, d, q_dim, /*accumulate=*/true, s);
    rmsnorm(x_.data(), w.ffn_norm.data(), normed_.data(), n, d, config_.rms_eps, s);
    gemm_.run(normed_.data(), w.w_gate_up.data(), gate_up_.data(), rows, 2 * ffn, d, s);
    swiglu(gate_up_.data(), gate_up_.data() + ffn, 2 * int64_t{ffn}, act_.data(), n, ffn, s);
    gemm_.run(act_.data(), w.w_down.data(), x_.data(), rows, d, ffn, /*accumulate=*/true, s);
  }

  // Final norm and output projection of `rows` rows of x_ starting at `first_row` into logits_.
  void project_logits(int64_t first_row, int64_t rows) {
    cudaStream_t s = stream_.get();
    const int d = config_.d_model;
    rmsnorm(x_.data() + first_row * d, output_norm_.data(), normed_.data(), rows, d, config_.rms_eps, s);
    gemm_.run(normed_.data(), output_matrix(), logits_.data(), static_cast<int>(rows), config_.vocab_size, d,
              /*accumulate=*/false, s);
  }

  // prompt_end: one past the last token of the whole prefill this chunk belongs to.
  void prefill_chunk(const int32_t* tokens, int64_t n, int64_t prompt_end, bool all_logits, float* logits) {
    cudaStream_t s = stream_.get();
    std::vector<int32_t> positions(as_size(n));
    for (int64_t t = 0; t < n; ++t) positions[as_size(t)] = static_cast<int32_t>(cached_ + t);
    CUDA_CHECK(cudaMemcpyAsync(tokens_.data(), tokens, as_size(n) * sizeof(int32_t), cudaMemcpyHostToDevice, s));
    CUDA_CHECK(cudaMemcpyAsync(positions_.data(), positions.data(), as_size(n) * sizeof(int32_t),
                               cudaMemcpyHostToDevice, s));
    embedding_gather(tokens_.data(), token_embd_.data(), x_.data(), static_cast<int>(n), config_.d_model,
                     config_.vocab_size, s);
    const int64_t first_pos = cached_;
    for (int i = 0; i < config_.n_layers; ++i) {
      layer(i, n, positions_.data(),
            [&](int layer_index) { prefill_attention_layer(layer_index, n, first_pos, prompt_end); });
    }
    cached_ += n;
    if (logits != nullptr) {
      const int64_t wanted = all_logits ? n : 1;
      const size_t vocab = as_size(config_.vocab_size);
      for (int64_t row = n - wanted; row < n; row += logit_rows_) {
        const int64_t rows = std::min(logit_rows_, n - row);
        project_logits(row, rows);
        float* dst = logits + as_size(row - (n - wanted)) * vocab;
        CUDA_CHECK(cudaMemcpyAsync(dst, logits_.data(), as_size(rows) * vocab * sizeof(float), cudaMemcpyDeviceToHost, s));
      }
    }
    CUDA_CHECK(cudaStreamSynchronize(s));
  }

  LayerKv layer_kv(int i) {
    return {k_pools_[as_size(i)].data(), v_pools_[as_size(i)].data(), page_table_.data(), static_cast<int>(num_pages_),
            quest_.layer(i)};
  }

  void prefill_attention_layer(int i, int64_t n, int64_t first_pos, int64_t prompt_end) {
    attention_->prefill(i, q_.data(), n, first_pos, prompt_end, layer_kv(i), attn_.data(), stream_.get());
  }

  // The layer's new key is in the pool: Quest folds it into its page's bounds before selecting.
  void decode_attention_layer(int i, int64_t bucket) {
    quest_.append(i, step_.data() + 2, static_cast<int>(bucket), stream_.get());
    attention_->decode(i, q_.data(), step_.data() + 2, static_cast<int>(bucket), layer_kv(i), attn_.data(),
                       stream_.get());
  }

  // Argmax or sampling over logits_ row 0 into chosen_; the draw is keyed by the position at
  // `position` (device memory), so a replayed graph draws afresh each step.
  void choose_token(const runtime::DeviceSampling& sampling, const int32_t* position) {
    cudaStream_t s = stream_.get();
    if (sampling.temperature == 0.0f) {
      argmax(logits_.data(), 1, config_.vocab_size, chosen_.data(), s);
    } else {
      SamplingConfig config;
      config.temperature = sampling.temperature;
      config.top_k = sampling.top_k;
      config.top_p = sampling.top_p;
      config.seed = sampling.seed;
      config.philox_offset_device = position;
      sample(logits_.data(), 1, config_.vocab_size, config, chosen_.data(), s);
    }
    CUDA_CHECK(cudaMemcpyAsync(pinned_chosen_->data(), chosen_.data(), sizeof(int32_t), cudaMemcpyDeviceToHost, s));
  }

  int32_t fetch_chosen() {
    CUDA_CHECK(cudaStreamSynchronize(stream_.get()));
    return *pinned_chosen_->data();
  }

  // Everything one decode step launches; reads token, position and kv_len from the pinned step
  // buffer at run time, so the captured graph serves every step of its bucket.
  void decode_body(int64_t bucket, bool logits_to_host = true) {
    cudaStream_t s = stream_.get();
    CUDA_CHECK(cudaMemcpyAsync(step_.data(), pinned_step_->data(), 3 * sizeof(int32_t), cudaMemcpyHostToDevice, s));
    embedding_gather(step_.data(), token_embd_.data(), x_.data(), 1, config_.d_model, config_.vocab_size, s);
    for (int i = 0; i < config_.n_layers; ++i) {
      layer(i, 1, step_.data() + 1, [&](int layer_index) { decode_attention_layer(layer_index, bucket); });
    }
    project_logits(0, 1);
    if (!logits_to_host) return;
    CUDA_CHECK(cudaMemcpyAsync(pinned_logits_->data(), logits_.data(), as_size(config_.vocab_size) * sizeof(float),
                               cudaMemcpyDeviceToHost, s));
  }

  // A decode step whose graph also chooses the next token (graphs per bucket, recaptured when the
  // sampling settings change: they are baked into the captured launch).
  int32_t decode_step_sampled(int32_t token, const runtime::DeviceSampling& sampling) {
    if (sampling != sampled_graphs_for_) {
      sampled_graphs_.clear();
      sampled_graphs_for_ = sampling;
    }
    const int64_t bucket = begin_decode_step(token);
    run_decode_graph(sampled_graphs_, bucket, [&] {
      decode_body(bucket, /*logits_to_host=*/false);
      choose_token(sampling, step_.data() + 1);
    });
    const int32_t chosen = fetch_chosen();
    end_decode_step();
    return chosen;
  }

  // Replays the bucket's graph; a bucket's first step runs `body` eagerly (the GEMM plans are
  // chosen outside the capture) and then captures it.
  template <typename Body>
  void run_decode_graph(std::map<int64_t, DecodeGraph>& graphs, int64_t bucket, Body&& body) {
    auto graph = graphs.find(bucket);
    if (graph != graphs.end()) {
      graph->second.launch(stream_.get());
      return;
    }
    body();
    CUDA_CHECK(cudaStreamSynchronize(stream_.get()));
    graphs[bucket].capture(stream_.get(), body);
  }

  // Host side of a decode step: the step buffer, the bucket, bounds left stale by a truncation.
  int64_t begin_decode_step(int32_t token) {
    int32_t* step = pinned_step_->data();
    step[0] = token;
    step[1] = static_cast<int32_t>(cached_);
    step[2] = static_cast<int32_t>(cached_ + 1);
    quest_.rebuild_stale(cached_, stream_.get());  // only after a truncation: a prefill left them current
    return decode_bucket(cached_ + 1, capacity_);
  }

  void end_decode_step() {
    ++cached_;
    quest_.appended(cached_);
  }

  void decode_step(int32_t token, float* logits) {
    const int64_t bucket = begin_decode_step(token);
    run_decode_graph(graphs_, bucket, [&] { decode_body(bucket); });
    CUDA_CHECK(cudaStreamSynchronize(stream_.get()));
    end_decode_step();
    if (logits != nullptr) std::memcpy(logits, pinned_logits_->data(), as_size(config_.vocab_size) * sizeof(float));
  }

  model::ModelConfig config_;
  int64_t capacity_;
  int64_t chunk_ = 1;
  int64_t num_pages_;
  int64_t cached_ = 0;
  runtime::KvSequences sequences_;
  runtime::SequenceId default_sequence_ = 0;
  size_t device_pages_ = 0;  // entries of the device page table that mirror the sequence's pages
  int64_t logit_rows_ = 1;
  MemoryPlan plan_;
  CudaStream stream_;
  Gemm gemm_;

  DeviceBuffer<bf16> token_embd_, output_norm_, output_;
  std::vector<LayerWeights> layers_;
  std::vector<DeviceBuffer<bf16>> k_pools_, v_pools_;
  DeviceBuffer<int32_t> page_table_;
  DeviceBuffer<float> inv_freq_;
  DeviceBuffer<float> x_;
  DeviceBuffer<bf16> normed_, qkv_, q_, k_, v_, attn_, gate_up_, act_;
  DeviceBuffer<float> logits_;
  DeviceBuffer<int32_t> tokens_, positions_, step_;
  QuestBounds quest_;
  std::unique_ptr<CudaAttention> attention_;
  std::unique_ptr<PinnedBuffer<int32_t>> pinned_step_;
  std::unique_ptr<PinnedBuffer<float>> pinned_logits_;
  DeviceBuffer<int32_t> chosen_;
  std::unique_ptr<PinnedBuffer<int32_t>> pinned_chosen_;
  std::map<int64_t, DecodeGraph> graphs_;
  std::map<int64_t, DecodeGraph> sampled_graphs_;  // decode steps that also choose the next token
  runtime::DeviceSampling sampled_graphs_for_;
};

}  // namespace

std::unique_ptr<runtime::Transformer> make_cuda_transformer(const model::ModelSource& source,
                                                          const runtime::BackendOptions& options) {
  return std::make_unique<CudaTransformer>(source, options);
}

}  // namespace deltainfer::cuda
