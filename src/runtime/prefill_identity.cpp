#include "runtime/prefill_identity.h"

namespace deltainfer::runtime {
namespace {

// A dense prefill without Δ reads none of the sparse knobs (window and sink belong to sliding
// prefill and streaming decode alike, so they matter only where the prefill is sparse).
bool plain_dense(const attention::AttentionConfig& c) {
  return c.prefill.kind == attention::PrefillKind::Dense && !c.prefill.delta;
}

bool same_knobs(const attention::PrefillConfig& a, const attention::PrefillConfig& b) {
  return a.kind == b.kind && a.delta == b.delta && a.gamma == b.gamma && a.variant == b.variant &&
         a.dense_tail == b.dense_tail && a.estimate_queries == b.estimate_queries && a.block == b.block &&
         a.vertical == b.vertical && a.slash == b.slash;
}

}  // namespace

bool same_prefill(const attention::AttentionConfig& a, const attention::AttentionConfig& b) {
  // Instrumentation adds a dense pass per layer and records fidelity: never shared.
  if (a.instrument || b.instrument) return false;
  if (plain_dense(a) || plain_dense(b)) return plain_dense(a) && plain_dense(b);
  return same_knobs(a.prefill, b.prefill) && a.window == b.window && a.sink == b.sink;
}

}  // namespace deltainfer::runtime
