#pragma once
// Progress of a long run on stderr: a bar with the rate and the ETA, redrawn in place when stderr
// is a terminal; otherwise one plain line per 10% (or per minute), so logs stay readable. Used by
// eval (samples) and by long prefills in generate and bench (tokens).
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

namespace deltainfer {

class Progress {
 public:
  // `unit` names what a step is ("tokens"): when given, the rate (units/s) is shown too.
  Progress(std::string label, int64_t total, std::FILE* out = stderr, std::string unit = {});
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;
  ~Progress();

  // `note` says what is being done now (e.g. "sliding+delta niah_single 4096").
  void advance(int64_t steps, std::string_view note);
  void finish();

 private:
  using Clock = std::chrono::steady_clock;
  void draw(std::string_view note);

  std::string label_;
  std::string unit_;
  int64_t total_;
  int64_t done_ = 0;
  std::FILE* out_;
  bool terminal_;
  bool finished_ = false;
  Clock::time_point start_;
  Clock::time_point last_line_;
  int64_t last_decile_ = -1;
};

// "1h02m", "3m07s", "12s".
std::string format_duration(double seconds);

// "12.3K tokens/s": `count` units over `seconds`, with a K/M prefix above a thousand.
std::string format_rate(double count, double seconds, std::string_view unit);

}  // namespace deltainfer
