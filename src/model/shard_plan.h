#pragma once
// Tensor parallelism as data: which part of a model one rank of `world` holds (Megatron-style).
// Query and KV heads, the MLP's intermediate columns and the vocabulary are split into contiguous
// ranges, one per rank. Column-parallel matrices (q, k, v and their biases, gate, up) keep the rows
// of the rank's heads or MLP columns; row-parallel ones (o, down) keep the matching columns and
// produce partial sums that the ranks all-reduce; the embedding and the output matrix keep the
// rank's vocabulary rows. Norm weights are whole on every rank. Pure arithmetic: CPU-tested.
#include <cstdint>
#include <vector>

#include "model/architecture.h"
#include "model/model_config.h"

namespace deltainfer::model {

struct IndexRange {
  int64_t begin = 0;
  int64_t count = 0;
  int64_t end() const { return begin + count; }
};

// The part of a tensor [rows, cols] (a vector is [rows, 1]) that a rank holds.
struct TensorSlice {
  IndexRange rows;
  IndexRange cols;
};

class ShardPlan {
 public:
  // Throws InputError naming --tensor-parallel when `world` does not divide the model's query
  // heads, KV heads or MLP intermediate size (a KV head is never split), listing the degrees the
  // model allows; the vocabulary may leave a remainder (the first vocab % world ranks hold one row more).
  ShardPlan(const ModelConfig& config, int rank, int world);

  int rank() const { return rank_; }
  int world() const { return world_; }
  IndexRange q_heads() const { return q_heads_; }
  IndexRange kv_heads() const { return kv_heads_; }
  IndexRange ffn_columns() const { return ffn_columns_; }
  IndexRange vocab_rows() const { return vocab_rows_; }
  // Every rank's vocabulary range padded to this many rows, so that the ranks' logits gather as
  // equal blocks: ceil(vocab / world).
  int64_t vocab_stride() const { return vocab_stride_; }
  IndexRange vocab_rows_of(int rank) const;

  // The config one rank computes with: its heads, KV heads and MLP columns (the vocabulary stays
  // whole: the logits are gathered).
  ModelConfig local_config() const;

  // The part of the full tensor `role` of shape `shape` this rank holds.
  TensorSlice slice(TensorRole role, const std::vector<int64_t>& shape) const;

  // The degrees in 1..8 that divide the model's heads, KV heads and MLP size.
  static std::vector<int> allowed_degrees(const ModelConfig& config);

 private:
  ModelConfig config_;
  int rank_ = 0;
  int world_ = 1;
  IndexRange q_heads_, kv_heads_, ffn_columns_, vocab_rows_;
  int64_t vocab_stride_ = 0;
};

// Copies `slice` out of the row-major matrix `full` ([rows, cols]) into a row-major [slice rows, slice cols].
std::vector<float> slice_matrix(const float* full, int64_t rows, int64_t cols, const TensorSlice& slice);

}  // namespace deltainfer::model
