#pragma once
// Vectorized exp for the CPU path's elementwise work: attention's softmax (one exp per key, per
// head, per layer of every decode step: ~150k per SmolLM2 step at 512 context) and SwiGLU's
// sigmoid (ffn_dim per layer). std::exp is scalar: softmax + expf + swiglu were ~3% of a 2-thread
// SmolLM2 decode step at context 32-544, ~7% with a 512-token prefill (perf); ~1% after.
//
// Contract: the AVX2 variant (picked at run time where the CPU has AVX2 and FMA) agrees with
// std::exp to a relative error below 2.5e-7 (~2 f32 ulp; measured worst 1.2e-7, unit test over
// [-87, 88]), returns exactly 0 for inputs below -87.34 (where exp is subnormal or 0 in f32;
// softmax relies on exp(-inf) == 0 for rejected keys), +inf above 88.72, and NaN for NaN. The
// scalar fallback is std::exp itself.
#include <cstdint>

namespace deltainfer {

// x[i] = exp(x[i] - shift) for i in [0, n); returns the sum of the new x[i], accumulated in double.
double exp_shifted_in_place(float* x, int64_t n, float shift);

// gate[i] = silu(gate[i]) * up[i] = gate[i] / (1 + exp(-gate[i])) * up[i] for i in [0, n).
void silu_multiply(float* gate, const float* up, int64_t n);

// The same with the scalar std::exp whatever the CPU (the reference the tests compare against).
double exp_shifted_in_place_scalar(float* x, int64_t n, float shift);
void silu_multiply_scalar(float* gate, const float* up, int64_t n);

}  // namespace deltainfer
