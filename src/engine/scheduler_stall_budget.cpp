#include "engine/scheduler_stall_budget.h"

#include <algorithm>

#include "core/error.h"

namespace deltainfer::engine {
namespace {

constexpr double kSmoothing = 0.1;  // weight of the newest decode pass in the moving average

}  // namespace

StallBudget::StallBudget(double ratio) : ratio_(ratio) {
  if (!(ratio == 0.0 || ratio > 1.0)) {
    throw_input_error("--max-stall must be 0 (no bound) or > 1 (got {})", ratio);
  }
}

bool StallBudget::allows_prompt() const {
  if (ratio_ == 0.0) return true;
  return decode_pass_ > 0.0 ? balance_ >= 0.0 : unmeasured_passes_ == 0;
}

void StallBudget::record(bool decoded, bool read_prompt, double seconds) {
  if (ratio_ == 0.0 || !decoded) return;  // a pass that decodes no one stalls no one
  if (read_prompt) {
    if (decode_pass_ > 0.0) {
      balance_ = std::min(balance_ + ratio_ * decode_pass_ - seconds, (ratio_ - 1.0) * decode_pass_);
    } else {
      unmeasured_seconds_ += seconds;
      ++unmeasured_passes_;
    }
    return;
  }
  if (decode_pass_ == 0.0) {
    decode_pass_ = seconds;
    balance_ += unmeasured_passes_ * ratio_ * seconds - unmeasured_seconds_;
    unmeasured_seconds_ = 0.0;
    unmeasured_passes_ = 0;
  } else {
    decode_pass_ += kSmoothing * (seconds - decode_pass_);
  }
  const double earning = (ratio_ - 1.0) * decode_pass_;
  balance_ = std::min(balance_ + earning, earning);
}

}  // namespace deltainfer::engine
