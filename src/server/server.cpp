#include "server/server.h"

#include <fmt/format.h>
#include <httplib.h>
#include <sys/socket.h>

#include <chrono>
#include <condition_variable>
#include <mutex>

#include "attention/attention_config.h"
#include "core/error.h"
#include "server/api_error.h"
#include "server/completion_channel.h"
#include "server/json_fields.h"
#include "server/metrics.h"
#include "server/openai_responses.h"
#include "tokenizer/tokenizer.h"

namespace deltainfer::server {
namespace {

using nlohmann::json;

constexpr const char* kJson = "application/json";
// A stream with nothing to say writes an SSE comment this often: clients ignore it, and a write
// to a client that has gone fails, which cancels its request even before its first token.
constexpr auto kStreamKeepAlive = std::chrono::seconds(2);
constexpr auto kStreamPoll = std::chrono::milliseconds(100);
constexpr time_t kKeepAliveSeconds = 15;
constexpr size_t kKeepAliveRequests = 1000;
// Connections the kernel holds for accept(). Debian's libcpp-httplib is compiled with a backlog of
// 5: 64 clients connecting at once overflowed it, and under load the kernel reset some of them
// before any answer ('Connection reset by peer' in the load test). The kernel caps this at
// net.core.somaxconn.
constexpr int kListenBacklog = 4096;

bool needs_api_key(const std::string& path) {
  return path.rfind("/v1/", 0) == 0 || path == "/tokenize" || path == "/detokenize";
}

// The error object of a response httplib produced itself (no route, body too large, ...).
json default_error(const httplib::Request& req, int status, size_t max_body) {
  if (status == 404) return error_body(fmt::format("no route {} {}", req.method, req.path), "not_found_error", "", "not_found");
  if (status == 413) {
    return error_body(fmt::format("the request body exceeds the limit of {} bytes", max_body), "invalid_request_error", "",
                      "request_too_large");
  }
  return error_body(fmt::format("HTTP {}", status), status >= 500 ? "server_error" : "invalid_request_error", "", "");
}

bool completed(const engine::CompletionOutcome& outcome) {
  return outcome.finish == engine::FinishReason::Stopped || outcome.finish == engine::FinishReason::Length;
}

// Why a completion did not complete, as the error a client gets.
ApiError not_completed(const engine::CompletionOutcome& outcome) {
  if (outcome.finish == engine::FinishReason::Cancelled) {
    return ApiError(503, "the request was cancelled (the server is shutting down)", "server_error", "", "cancelled");
  }
  return ApiError(500, fmt::format("the engine failed: {}", outcome.error), "server_error", "", "engine_error");
}

// The server-sent events of one streamed completion, update by update.
class StreamEvents {
 public:
  StreamEvents(ResponseHeader header, bool include_usage) : header_(std::move(header)), include_usage_(include_usage) {}

  // What to write for `update` (may be empty): the chat role first, then text chunks, then the
  // finish reason (or the error), the usage when asked, and [DONE]; a comment when silent long.
  std::string next(const CompletionChannel::Update& update) {
    std::string out;
    if (header_.endpoint == Endpoint::Chat && !started_) {
      out += server_sent_event(chunk_json(header_, "", /*first=*/true, nullptr));
      started_ = true;
    }
    if (!update.text.empty()) out += server_sent_event(chunk_json(header_, update.text, false, nullptr));
    if (update.outcome) {
      out += final_events(*update.outcome);
    } else if (out.empty() && Clock::now() - last_event_ > kStreamKeepAlive) {
      out = ": keep-alive\n\n";
    }
    if (!out.empty()) last_event_ = Clock::now();
    return out;
  }

 private:
  using Clock = std::chrono::steady_clock;

  std::string final_events(const engine::CompletionOutcome& outcome) const {
    std::string out;
    if (completed(outcome)) {
      out += server_sent_event(chunk_json(header_, "", false, &outcome.finish));
      if (include_usage_) out += server_sent_event(usage_chunk_json(header_, outcome));
    } else {
      out += server_sent_event(error_body(not_completed(outcome)));
    }
    out += kStreamEnd;
    return out;
  }

  ResponseHeader header_;
  bool include_usage_;
  bool started_ = false;
  Clock::time_point last_event_ = Clock::now();
};

}  // namespace

struct Server::Impl {
  engine::Scheduler& scheduler;
  ServedModel model;
  ServerOptions options;
  httplib::Server http;
  Metrics metrics;
  std::atomic<bool> draining{false};

  std::mutex in_flight_mutex;
  std::condition_variable in_flight_changed;
  int64_t in_flight = 0;  // completions accepted and not yet fully answered
  ::socket_t listening_socket = INVALID_SOCKET;  // the socket bind() created

  Impl(engine::Scheduler& s, ServedModel m, ServerOptions o) : scheduler(s), model(std::move(m)), options(std::move(o)) {}

  // Counts a completion in flight for as long as it lives.
  std::shared_ptr<void> track_in_flight() {
    {
      std::lock_guard<std::mutex> lock(in_flight_mutex);
      ++in_flight;
    }
    return std::shared_ptr<void>(nullptr, [this](void*) {
      std::lock_guard<std::mutex> lock(in_flight_mutex);
      --in_flight;
      in_flight_changed.notify_all();
    });
  }

  static void send_json(httplib::Response& res, int status, const json& body) {
    res.status = status;
    res.set_content(json_text(body), kJson);
  }

  static void send_error(httplib::Response& res, const ApiError& error) {
    if (error.status() == 429) res.set_header("Retry-After", "1");
    send_json(res, error.status(), error_body(error));
  }

  // Runs a route, answering whatever it throws with an error object.
  template <typename Route>
  httplib::Server::Handler guarded(Route route) {
    return [this, route](const httplib::Request& req, httplib::Response& res) {
      try {
        route(req, res);
      } catch (const ApiError& e) {
        send_error(res, e);
      } catch (const InputError& e) {
        send_error(res, bad_request(e.what()));
      } catch (const std::exception& e) {
        fmt::print(stderr, "serve: {} {}: internal error: {}\n", req.method, req.path, e.what());
        send_error(res, ApiError(500, e.what(), "server_error", "", "internal_error"));
      }
    };
  }

  void install_routes() {
    http.set_payload_max_length(options.max_body_bytes);
    // Longer than clients keep idle connections (httpx, under the openai client: 5 s), so a client
    // never sends a request on a connection the server is closing at that moment.
    http.set_keep_alive_timeout(kKeepAliveSeconds);
    http.set_keep_alive_max_count(kKeepAliveRequests);
    http.set_socket_options([this](::socket_t sock) {
      httplib::default_socket_options(sock);  // this hook replaces httplib's own options
      listening_socket = sock;  // the last one offered is the one that bound
    });
    const int threads = options.http_threads;
    http.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
    http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      if (options.api_key.empty() || !needs_api_key(req.path)) return httplib::Server::HandlerResponse::Unhandled;
      if (req.get_header_value("Authorization") == "Bearer " + options.api_key) {
        return httplib::Server::HandlerResponse::Unhandled;
      }
      send_error(res, ApiError(401, "a valid API key is required (Authorization: Bearer KEY)", "authentication_error", "",
                               "invalid_api_key"));
      return httplib::Server::HandlerResponse::Handled;
    });
    http.set_error_handler([this](const httplib::Request& req, httplib::Response& res) {
      if (res.body.empty() && !res.is_chunked_content_provider_) {
        res.set_content(json_text(default_error(req, res.status, options.max_body_bytes)), kJson);
      }
    });
    http.set_logger([this](const httplib::Request&, const httplib::Response& res) { metrics.count_response(res.status); });

    http.Post("/v1/chat/completions", guarded([this](const auto& req, auto& res) { completion(req, res, Endpoint::Chat); }));
    http.Post("/v1/completions", guarded([this](const auto& req, auto& res) { completion(req, res, Endpoint::Completion); }));
    http.Get("/v1/models", guarded([this](const auto&, auto& res) { models(res); }));
    http.Get("/health", guarded([this](const auto&, auto& res) { health(res); }));
    http.Get("/metrics", guarded([this](const auto&, auto& res) {
      res.set_content(metrics.render(scheduler.stats()), "text/plain; version=0.0.4");
    }));
    http.Post("/tokenize", guarded([this](const auto& req, auto& res) { tokenize(req, res); }));
    http.Post("/detokenize", guarded([this](const auto& req, auto& res) { detokenize(req, res); }));
  }

  void models(httplib::Response& res) const {
    const json card = {{"id", model.name}, {"object", "model"}, {"created", 0}, {"owned_by", "deltainfer"},
                       {"max_model_len", model.capacity}};
    send_json(res, 200, {{"object", "list"}, {"data", json::array({card})}});
  }

  void health(httplib::Response& res) const {
    if (draining) throw ApiError(503, "the server is shutting down", "server_error", "", "shutting_down");
    const engine::SchedulerStats stats = scheduler.stats();
    send_json(res, 200, {{"status", "ok"}, {"running", stats.running}, {"queued", stats.queued}});
  }

  void tokenize(const httplib::Request& req, httplib::Response& res) const {
    const json body = parse_object(req.body);
    std::vector<int32_t> tokens;
    if (body.contains("messages")) {
      tokens = chat_prompt(body["messages"], *model.tokenizer);
    } else {
      const std::optional<std::string> prompt = optional_string(body, "prompt");
      if (!prompt) throw bad_request("'prompt' (a string) or 'messages' is required", "prompt", "missing_required_parameter");
      tokens = optional_bool(body, "add_special_tokens").value_or(true) ? text_prompt(*prompt, *model.tokenizer)
                                                                        : model.tokenizer->encode(*prompt, true);
    }
    send_json(res, 200, {{"tokens", tokens}, {"count", tokens.size()}, {"max_model_len", model.capacity}});
  }

  void detokenize(const httplib::Request& req, httplib::Response& res) const {
    const json body = parse_object(req.body);
    if (!body.contains("tokens")) throw bad_request("'tokens' is required", "tokens", "missing_required_parameter");
    const std::vector<int32_t> tokens = token_ids(body["tokens"], "tokens", model.tokenizer->vocab_size());
    send_json(res, 200, {{"prompt", model.tokenizer->decode(tokens)}});
  }

  engine::RequestId submit(engine::CompletionRequest request, engine::CompletionCallbacks callbacks) {
    try {
      return scheduler.submit(std::move(request), std::move(callbacks));
    } catch (const engine::QueueFull& e) {
      throw ApiError(429, fmt::format("{}; retry later", e.what()), "rate_limit_error", "", "queue_full");
    } catch (const engine::ShuttingDown& e) {
      throw ApiError(503, e.what(), "server_error", "", "shutting_down");
    }
  }

  void completion(const httplib::Request& req, httplib::Response& res, Endpoint endpoint) {
    if (draining) throw ApiError(503, "the server is shutting down", "server_error", "", "shutting_down");
    const json body = parse_object(req.body);
    CompletionParams params = parse_completion(body, endpoint, model);
    const ResponseHeader header = response_header(endpoint, model.name, attention::describe(params.method));
    auto channel = std::make_shared<CompletionChannel>();
    auto in_flight_token = track_in_flight();
    const engine::RequestId id = submit(
        std::move(params.request),
        CompletionChannel::callbacks(channel, [this](const engine::CompletionOutcome& o) { metrics.count_completion(o); }));
    if (!params.stream) {
      const engine::CompletionOutcome outcome = channel->wait_done();
      if (!completed(outcome)) throw not_completed(outcome);
      send_json(res, 200, completion_json(header, outcome));
      return;
    }
    stream(res, header, channel, id, params.include_usage, std::move(in_flight_token));
  }

  void stream(httplib::Response& res, const ResponseHeader& header, const std::shared_ptr<CompletionChannel>& channel,
              engine::RequestId id, bool include_usage, std::shared_ptr<void> in_flight_token) {
    res.set_header("Cache-Control", "no-cache");
    auto events = std::make_shared<StreamEvents>(header, include_usage);
    res.set_chunked_content_provider(
        "text/event-stream",
        [channel, events, in_flight_token](size_t, httplib::DataSink& sink) {
          const CompletionChannel::Update update = channel->wait(kStreamPoll);
          const std::string out = events->next(update);
          if (!out.empty() && !sink.write(out.data(), out.size())) return false;
          if (update.outcome) sink.done();
          return true;
        },
        [this, id](bool success) {
          if (!success) scheduler.cancel(id);  // the client went away mid-stream
        });
  }
};

Server::Server(engine::Scheduler& scheduler, ServedModel model, ServerOptions options)
    : impl_(std::make_unique<Impl>(scheduler, std::move(model), std::move(options))) {
  impl_->install_routes();
}

Server::~Server() = default;

int Server::bind() {
  const ServerOptions& o = impl_->options;
  int port = o.port;
  if (port == 0) {
    port = impl_->http.bind_to_any_port(o.host);
    if (port <= 0) throw_input_error("--host {}: cannot bind any port", o.host);
  } else if (!impl_->http.bind_to_port(o.host, o.port)) {
    throw_input_error("--host {} --port {}: cannot bind (in use?)", o.host, o.port);
  }
  // listen() again on a listening socket only sets its backlog.
  if (::listen(impl_->listening_socket, kListenBacklog) != 0) {
    throw Error(fmt::format("--host {} --port {}: cannot widen the listen backlog", o.host, port));
  }
  return port;
}

void Server::serve() { impl_->http.listen_after_bind(); }

void Server::shutdown() {
  impl_->draining = true;
  impl_->scheduler.drain();
  std::unique_lock<std::mutex> lock(impl_->in_flight_mutex);
  impl_->in_flight_changed.wait(lock, [&] { return impl_->in_flight == 0; });
  lock.unlock();
  impl_->http.stop();
}

}  // namespace deltainfer::server
