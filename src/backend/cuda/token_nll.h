#pragma once
// Per-token negative log-likelihood on the device: each row of logits is reduced to
// −log softmax(row)[target], so perplexity takes one number per token off the GPU instead of a row
// of vocab floats (Qwen2.5's 151,936: 600 KB a token, 20 GB for 32K tokens). The device twin of
// runtime::negative_log_likelihood (runtime/token_nll.h), which the tests hold it to.
//
// Layouts: logits [rows][vocab] f32, row-major, rows `vocab` floats apart; targets [rows] int32;
// nlls [rows] f64 (doubles as the host formula and eval's sums; 8 bytes a token is nothing here).
//
// Numerics, per row, one block of kTokenNllThreads threads:
//   m = max of the row in f32 (fmaxf: NaN entries are skipped, as std::max skips them on the host);
//   s = Σ_v exp(row[v] − m): the difference in f32, expf of it (within 2 ulp), each thread summing
//       its strided elements in f64 in index order, then a fixed shuffle tree and a fixed sum over
//       the warps, so the same inputs give the same bits on every run (no atomics);
//   nll = (log(s) + m) − row[target] in f64, in the host formula's order.
// Against the host formula (same f32 max and differences, exp in f64 instead of expf) s differs
// by at most ~3e-7 relative, so |nll − host| <= 1e-6 plus the f64 rounding of adding m and
// subtracting row[target] (2^-52 · (|m| + |row[target]|); nothing for logits of ordinary size).
// tests/gpu/token_nll_test.cu checks that bound, vocab 151,936 included.
//
// Special values, as on the host: -inf logits add nothing; a -inf target logit gives +inf; a row
// with +inf or NaN logits, or with no finite logit, gives NaN. A target outside [0, vocab) gives
// NaN (runtime::kNoTarget = -1 is how callers mark a row they do not score); no read outside the row.
//
// Only launches on `stream` (no allocation, no synchronization: capturable); rows == 0 launches
// nothing. Throws Error for rows < 0, vocab < 1, or a failed launch.
#include <cuda_runtime_api.h>

#include <cstdint>

namespace deltainfer::cuda {

inline constexpr int kTokenNllThreads = 256;

void token_nll(const float* logits, int rows, int vocab, const int32_t* targets, double* nlls, cudaStream_t stream);

}  // namespace deltainfer::cuda
