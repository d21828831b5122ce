#pragma once
// Which attention methods' CUDA kernels read FP8 KV pages: the one place the CUDA backend checks
// --kv-dtype against a method. Issue 16 teaches the kernels FP8 one by one; until a method's every
// kernel reads it (its prefill, its decode, and the paged append that writes the pages), the
// method is refused under --kv-dtype fp8 rather than run on pages it would misread.
#include "attention/attention_config.h"
#include "core/kv_page.h"

namespace deltainfer::cuda {

// Throws InputError naming the method's parts whose kernels do not read `dtype` pages yet.
void require_kv_dtype_kernels(const attention::AttentionConfig& method, KvDtype dtype);

}  // namespace deltainfer::cuda
