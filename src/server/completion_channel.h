#pragma once
// CompletionChannel: hands a completion's text and outcome from the scheduler's thread (its
// callbacks) to the HTTP thread that answers the request.
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "engine/request.h"

namespace deltainfer::server {

class CompletionChannel {
 public:
  struct Update {
    std::string text;                                 // text since the last update
    std::optional<engine::CompletionOutcome> outcome;  // set once the completion ended
  };

  // Callbacks that feed `channel` (kept alive by them: the scheduler may still call them after the
  // HTTP side has gone); on_done_too runs first at the end.
  static engine::CompletionCallbacks callbacks(const std::shared_ptr<CompletionChannel>& channel,
                                               std::function<void(const engine::CompletionOutcome&)> on_done_too);

  // Waits up to `timeout` for new text or the end.
  Update wait(std::chrono::milliseconds timeout);
  engine::CompletionOutcome wait_done();

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::string text_;
  std::optional<engine::CompletionOutcome> outcome_;
};

}  // namespace deltainfer::server
