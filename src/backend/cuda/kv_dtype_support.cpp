#include "backend/cuda/kv_dtype_support.h"

#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/error.h"

namespace deltainfer::cuda {
namespace {

// The FP8 kernels so far: the page format and its CPU twin (core/kv_fp8_page.h); no CUDA kernel
// writes or reads FP8 pages yet, so no part of any method is listed as reading them.
bool append_writes_fp8() { return false; }
bool prefill_reads_fp8(const attention::PrefillConfig&) { return false; }
bool decode_reads_fp8(const attention::DecodeConfig&) { return false; }

}  // namespace

void require_kv_dtype_kernels(const attention::AttentionConfig& method, KvDtype dtype) {
  if (dtype == KvDtype::Bf16) return;
  std::vector<std::string> missing;
  if (!append_writes_fp8()) missing.emplace_back("the paged KV append");
  if (!prefill_reads_fp8(method.prefill)) {
    missing.push_back(fmt::format("prefill '{}'", attention::prefill_kind_name(method.prefill.kind)));
  }
  if (!decode_reads_fp8(method.decode)) {
    missing.push_back(fmt::format("decode '{}'", attention::decode_kind_name(method.decode.kind)));
  }
  if (missing.empty()) return;
  throw_input_error("--kv-dtype {}: the CUDA kernels of {} do not read FP8 KV pages yet (issue 16); use --kv-dtype bf16",
                    kv_dtype_name(dtype), fmt::join(missing, ", "));
}

}  // namespace deltainfer::cuda
