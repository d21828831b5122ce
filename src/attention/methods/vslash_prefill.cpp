// Vertical-slash prefill (MInference): per chunk and head, the key columns and diagonals the
// chunk's last queries weigh most (attention/vertical_slash.h), in blocks.
#include <fmt/format.h>

#include <algorithm>
#include <memory>

#include "attention/method_registry.h"
#include "attention/parallel_for.h"
#include "attention/vertical_slash.h"

namespace deltainfer::attention::methods {
namespace {

class VerticalSlashPrefill final : public CpuPrefillPolicy {
 public:
  VerticalSlashPrefill(const PrefillConfig& prefill, const HeadShape& shape) : prefill_(prefill), shape_(shape) {}

  KeysFor keys(const PrefillChunk& chunk, const CpuWorkers& workers) override {
    const PrefillConfig& p = prefill_;
    const VerticalSlashParams params{p.estimate_queries, p.block, p.vertical, p.slash};
    const int64_t estimated = std::min(p.estimate_queries, chunk.n_tokens), stride = shape_.q_row_stride();
    auto patterns = std::make_shared<std::vector<VerticalSlashPattern>>(static_cast<size_t>(shape_.n_heads));
    parallel_for(shape_.n_heads, workers.threads, [&](int64_t head, int worker) {
      const QueryRows last{chunk.q + (chunk.n_tokens - estimated) * stride + head * shape_.head_dim, stride,
                           chunk.first_pos + chunk.n_tokens - estimated, estimated};
      (*patterns)[static_cast<size_t>(head)] = estimate_vertical_slash(
          shape_, chunk.kv, static_cast<int>(head), last, params, workers.scratch[static_cast<size_t>(worker)]);
    });
    return [patterns, block = p.block](int head, int64_t i0, int64_t i1) {
      return KeySet{vertical_slash_ranges((*patterns)[static_cast<size_t>(head)], block, i0, i1), KeyRule{}};
    };
  }

  // Its key sets depend on the query block: the GPU kernel's.
  int64_t query_block_rows() const override { return kVerticalSlashQueryBlock; }

 private:
  PrefillConfig prefill_;
  HeadShape shape_;
};

}  // namespace

PrefillMethodInfo vslash_prefill() {
  PrefillMethodInfo m;
  m.description = "vertical-slash block-sparse (MInference), estimated from the last queries; with +delta, Δ correction";
  m.parameters = "--vertical, --slash, --estimate-queries, --block; +delta: --gamma, --dense-tail, --delta-variant";
  m.describe = [](const AttentionConfig& c) {
    const PrefillConfig& p = c.prefill;
    return fmt::format(" vertical={} slash={} estimate={} block={}", p.vertical, p.slash, p.estimate_queries, p.block);
  };
  // An upper bound: every kept column and diagonal distinct.
  m.kept_keys = [](const AttentionConfig& c) -> std::optional<int64_t> { return c.prefill.vertical + c.prefill.slash; };
  m.cpu_policy = [](const AttentionConfig& config, const HeadShape& shape) -> std::unique_ptr<CpuPrefillPolicy> {
    return std::make_unique<VerticalSlashPrefill>(config.prefill, shape);
  };
  return m;
}

}  // namespace deltainfer::attention::methods
