#pragma once
// What the CPU at hand runs, asked once: the AVX2 kernels outside the quantized matmuls
// (core/vector_math, attention/key_row_kernels) are compiled with function-level target
// attributes (the build targets plain x86-64) and handed out only where this says yes.
namespace deltainfer {

bool cpu_has_avx2_fma();

}  // namespace deltainfer
