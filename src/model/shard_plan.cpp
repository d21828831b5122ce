#include "model/shard_plan.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

#include "core/error.h"

namespace deltainfer::model {
namespace {

constexpr int kMaxDegree = 8;

bool divides(int world, const ModelConfig& c) {
  return c.n_heads % world == 0 && c.n_kv_heads % world == 0 && c.ffn_dim % world == 0;
}

IndexRange even_part(int64_t total, int rank, int world) {
  const int64_t part = total / world;
  return {part * rank, part};
}

// The first `total % world` ranks hold one element more.
IndexRange remainder_part(int64_t total, int rank, int world) {
  const int64_t base = total / world, extra = total % world;
  return {base * rank + std::min<int64_t>(rank, extra), base + (rank < extra ? 1 : 0)};
}

IndexRange whole(int64_t n) { return {0, n}; }

}  // namespace

std::vector<int> ShardPlan::allowed_degrees(const ModelConfig& config) {
  std::vector<int> degrees;
  for (int world = 1; world <= kMaxDegree; ++world) {
    if (divides(world, config)) degrees.push_back(world);
  }
  return degrees;
}

ShardPlan::ShardPlan(const ModelConfig& config, int rank, int world) : config_(config), rank_(rank), world_(world) {
  if (world < 1 || rank < 0 || rank >= world) {
    throw_input_error("--tensor-parallel {}: rank {} is not one of its ranks", world, rank);
  }
  if (!divides(world, config)) {
    throw_input_error(
        "--tensor-parallel {}: {} has {} query heads, {} KV heads and an MLP of {}; the degree must divide all "
        "three (a KV head is never split), so it allows {}",
        world, config.name, config.n_heads, config.n_kv_heads, config.ffn_dim,
        fmt::join(allowed_degrees(config), ", "));
  }
  q_heads_ = even_part(config.n_heads, rank, world);
  kv_heads_ = even_part(config.n_kv_heads, rank, world);
  ffn_columns_ = even_part(config.ffn_dim, rank, world);
  vocab_rows_ = remainder_part(config.vocab_size, rank, world);
  vocab_stride_ = (int64_t{config.vocab_size} + world - 1) / world;
}

IndexRange ShardPlan::vocab_rows_of(int rank) const { return remainder_part(config_.vocab_size, rank, world_); }

ModelConfig ShardPlan::local_config() const {
  ModelConfig local = config_;
  local.n_heads = static_cast<int>(q_heads_.count);
  local.n_kv_heads = static_cast<int>(kv_heads_.count);
  local.ffn_dim = static_cast<int>(ffn_columns_.count);
  return local;
}

TensorSlice ShardPlan::slice(TensorRole role, const std::vector<int64_t>& shape) const {
  if (shape.empty() || shape.size() > 2) throw_error("ShardPlan::slice: a tensor of {} dimensions", shape.size());
  const int64_t rows = shape[0], cols = shape.size() == 2 ? shape[1] : 1;
  const int64_t head_dim = config_.head_dim;
  const auto heads = [&](IndexRange h) { return IndexRange{h.begin * head_dim, h.count * head_dim}; };
  using R = TensorRole;
  switch (role) {
    case R::AttnQ:
    case R::AttnQBias: return {heads(q_heads_), whole(cols)};
    case R::AttnK:
    case R::AttnV:
    case R::AttnKBias:
    case R::AttnVBias: return {heads(kv_heads_), whole(cols)};
    case R::FfnGate:
    case R::FfnUp: return {ffn_columns_, whole(cols)};
    case R::AttnOutput: return {whole(rows), heads(q_heads_)};
    case R::FfnDown: return {whole(rows), ffn_columns_};
    case R::TokenEmbedding:
    case R::Output: return {vocab_rows_, whole(cols)};
    default: return {whole(rows), whole(cols)};  // norms: whole on every rank
  }
}

std::vector<float> slice_matrix(const float* full, int64_t rows, int64_t cols, const TensorSlice& slice) {
  if (slice.rows.begin < 0 || slice.rows.end() > rows || slice.cols.begin < 0 || slice.cols.end() > cols) {
    throw_error("slice_matrix: rows [{}, {}) cols [{}, {}) outside a [{}, {}] matrix", slice.rows.begin,
                slice.rows.end(), slice.cols.begin, slice.cols.end(), rows, cols);
  }
  std::vector<float> out(static_cast<size_t>(slice.rows.count * slice.cols.count));
  for (int64_t r = 0; r < slice.rows.count; ++r) {
    const float* src = full + (slice.rows.begin + r) * cols + slice.cols.begin;
    std::copy(src, src + slice.cols.count, out.begin() + r * slice.cols.count);
  }
  return out;
}

}  // namespace deltainfer::model
