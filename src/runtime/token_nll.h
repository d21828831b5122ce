#pragma once
// The negative log-likelihood of a target token under a row of logits: the value LogitsFor::TokenNlls
// hands back (runtime/batch_plan.h). Backends that hold their logits on the host (the CPU backend,
// test doubles) compute it here; the CUDA backend's kernel (backend/cuda/token_nll.h) is this
// formula's device twin and is tested against it.
#include <cstdint>

namespace deltainfer::runtime {

// −log softmax(logits)[target] = log Σ_v exp(logits[v] − m) + m − logits[target], m = max logit:
// the max is taken in f32, each exp of the f32 difference in double, summed in double in index
// order. -inf logits add nothing; a -inf target gives +inf; NaN where no logit is finite or one is
// NaN or +inf. `target` must be in [0, vocab_size) (the caller checks).
double negative_log_likelihood(const float* logits, int32_t vocab_size, int32_t target);

// nlls[r] = negative_log_likelihood(logits + r * vocab_size, vocab_size, targets[r]) for r in
// [0, rows); NaN where targets[r] is kNoTarget. Row-major logits [rows][vocab_size].
void token_nlls_of_rows(const float* logits, int64_t rows, int32_t vocab_size, const int32_t* targets, double* nlls);

}  // namespace deltainfer::runtime
