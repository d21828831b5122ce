#pragma once
// How the varlen GPU tests pack a batch's chunks into one q/out: in a shuffled order (so no test
// leans on chunks arriving sorted), each after one spare row that belongs to no chunk (it must
// stay untouched, and a kernel reading past its chunk reads it).
#include <algorithm>
#include <numeric>
#include <random>
#include <vector>

#include "backend/cuda/prefill_attention.h"

namespace deltainfer::cuda::test {

// Sets every chunk's q_row; returns the packed rows.
inline int pack_shuffled(std::vector<VarlenChunk>& chunks, std::mt19937_64& rng) {
  std::vector<size_t> order(chunks.size());
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), rng);
  int rows = 0;
  for (size_t i : order) {
    rows += 1;
    chunks[i].q_row = rows;
    rows += chunks[i].n_q;
  }
  return rows;
}

}  // namespace deltainfer::cuda::test
