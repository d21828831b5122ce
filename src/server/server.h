#pragma once
// Server: the OpenAI-compatible HTTP API over a Scheduler (cpp-httplib underneath).
//   POST /v1/chat/completions, /v1/completions   (stream: server-sent events)
//   GET  /v1/models, /health, /metrics            (metrics: Prometheus text)
//   POST /tokenize, /detokenize
// Every error is OpenAI's error object with the matching status. With an API key set, /v1/*,
// /tokenize and /detokenize need `Authorization: Bearer KEY`.
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "engine/scheduler.h"
#include "server/completion_params.h"

namespace deltainfer::server {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                          // 0: any free port (see bound_port)
  std::string api_key;                      // empty: no authentication
  size_t max_body_bytes = 16u << 20;        // larger bodies: 413
  int http_threads = 128;                   // connections served at once
};

class Server {
 public:
  Server(engine::Scheduler& scheduler, ServedModel model, ServerOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds the address; InputError when it cannot. Returns the port bound.
  int bind();
  // Serves until shutdown(); returns once the listener has closed.
  void serve();
  // Graceful: new requests get 503, accepted ones finish (streams included), then the listener
  // closes and serve() returns. Call from any thread but the HTTP ones.
  void shutdown();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace deltainfer::server
