#pragma once
// The OCP FP8 e4m3 ("e4m3fn") number format on the host: 1 sign, 4 exponent (bias 7) and 3
// mantissa bits; normal values 2^-6..448, subnormals k * 2^-9 (k = 1..7), no infinity, NaN is
// S.1111.111. This is the CPU twin of what the CUDA kernels store as __nv_fp8_e4m3 and convert
// with cvt.rn.satfinite.e4m3x2.f32 (a GPU test compares the two bit for bit):
//   - finite inputs round to nearest, ties to even; magnitudes past 448 saturate to +-448;
//     magnitudes at or below 2^-10 (half the smallest subnormal) become a signed zero;
//   - NaN and +-inf become the NaN code 0x7F (e4m3 has no infinity; saturating an inf to 448
//     would hide it, so it stays non-finite, as it would in a bf16 cache).
#include <cstdint>

namespace deltainfer {

inline constexpr float kFp8E4m3Max = 448.0f;
inline constexpr uint8_t kFp8E4m3Nan = 0x7F;

uint8_t fp8_e4m3_encode(float value);
float fp8_e4m3_decode(uint8_t code);

}  // namespace deltainfer
