#include "server/completion_channel.h"

namespace deltainfer::server {

engine::CompletionCallbacks CompletionChannel::callbacks(
    const std::shared_ptr<CompletionChannel>& channel, std::function<void(const engine::CompletionOutcome&)> on_done_too) {
  engine::CompletionCallbacks callbacks;
  callbacks.on_text = [channel](std::string_view text) {
    std::lock_guard<std::mutex> lock(channel->mutex_);
    channel->text_.append(text);
    channel->changed_.notify_all();
  };
  callbacks.on_done = [channel, on_done_too = std::move(on_done_too)](const engine::CompletionOutcome& outcome) {
    if (on_done_too) on_done_too(outcome);
    std::lock_guard<std::mutex> lock(channel->mutex_);
    channel->outcome_ = outcome;
    channel->changed_.notify_all();
  };
  return callbacks;
}

CompletionChannel::Update CompletionChannel::wait(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait_for(lock, timeout, [&] { return !text_.empty() || outcome_.has_value(); });
  Update update;
  update.text.swap(text_);
  update.outcome = outcome_;
  return update;
}

engine::CompletionOutcome CompletionChannel::wait_done() {
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait(lock, [&] { return outcome_.has_value(); });
  return *outcome_;
}

}  // namespace deltainfer::server
