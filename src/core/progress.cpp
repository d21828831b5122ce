#include "core/progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>

namespace deltainfer {

std::string format_duration(double seconds) {
  const auto total = static_cast<int64_t>(std::max(0.0, seconds) + 0.5);
  if (total >= 3600) return fmt::format("{}h{:02d}m", total / 3600, (total % 3600) / 60);
  if (total >= 60) return fmt::format("{}m{:02d}s", total / 60, total % 60);
  return fmt::format("{}s", total);
}

std::string format_rate(double count, double seconds, std::string_view unit) {
  const double rate = seconds > 0.0 ? count / seconds : 0.0;
  if (rate >= 1e6) return fmt::format("{:.2f}M {}/s", rate / 1e6, unit);
  if (rate >= 1e3) return fmt::format("{:.1f}K {}/s", rate / 1e3, unit);
  return fmt::format("{:.1f} {}/s", rate, unit);
}

Progress::Progress(std::string label, int64_t total, std::FILE* out, std::string unit)
    : label_(std::move(label)),
      unit_(std::move(unit)),
      total_(std::max<int64_t>(total, 1)),
      out_(out),
      terminal_(isatty(fileno(out)) != 0),
      start_(Clock::now()),
      last_line_(start_) {}

Progress::~Progress() { finish(); }

void Progress::advance(int64_t steps, std::string_view note) {
  done_ = std::min(total_, done_ + steps);
  draw(note);
}

void Progress::draw(std::string_view note) {
  const double elapsed = std::chrono::duration<double>(Clock::now() - start_).count();
  const double fraction = static_cast<double>(done_) / static_cast<double>(total_);
  const std::string eta = done_ > 0 ? format_duration(elapsed / fraction - elapsed) : "?";
  const std::string rate = unit_.empty() ? std::string{} : ", " + format_rate(static_cast<double>(done_), elapsed, unit_);
  if (terminal_) {
    constexpr int kWidth = 30;
    const auto filled = static_cast<int>(fraction * kWidth);
    fmt::print(out_, "\r{} [{}{}] {}/{} {:3.0f}% {} elapsed{}, ETA {} | {}\x1b[K", label_,
               std::string(static_cast<size_t>(filled), '#'), std::string(static_cast<size_t>(kWidth - filled), '.'), done_,
               total_, 100.0 * fraction, format_duration(elapsed), rate, eta, note);
    std::fflush(out_);
    return;
  }
  const auto decile = static_cast<int64_t>(fraction * 10);
  const bool minute_passed = Clock::now() - last_line_ >= std::chrono::minutes(1);
  if (decile == last_decile_ && !minute_passed && done_ < total_) return;
  last_decile_ = decile;
  last_line_ = Clock::now();
  fmt::print(out_, "{}: {}/{} ({:.0f}%), {} elapsed{}, ETA {} | {}\n", label_, done_, total_, 100.0 * fraction,
             format_duration(elapsed), rate, eta, note);
  std::fflush(out_);
}

void Progress::finish() {
  if (finished_) return;
  finished_ = true;
  if (terminal_) fmt::print(out_, "\n");
}

}  // namespace deltainfer
