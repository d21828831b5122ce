#include "backend/cuda/kv_dtype_support.h"

#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/error.h"

namespace deltainfer::cuda {
namespace {

// The FP8 kernels: the paged append writes FP8 pages (kv_fp8_append.h); every decode method's
// kernels read them (dense and sparse split-KV decode, DELTA's logits, Quest's bounds:
// decode_attention.h, delta_decode.h); prefill reads them through the bf16 staging pool
// (kv_fp8_stage.h), on which every prefill method's kernels run unchanged.
bool append_writes_fp8() { return true; }
bool prefill_reads_fp8(const attention::PrefillConfig&) { return true; }
bool decode_reads_fp8(const attention::DecodeConfig&) { return true; }

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
