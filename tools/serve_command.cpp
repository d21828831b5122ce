// `deltainfer serve`: the OpenAI-compatible HTTP server (src/server) over the continuous-batching
// scheduler (src/engine/scheduler.h). SIGTERM or SIGINT: stop taking requests, finish the
// accepted ones, exit 0.
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include "attention_options.h"
#include "backend_options.h"
#include "commands.h"
#include "core/error.h"
#include "core/kv_page.h"
#include "engine/engine.h"
#include "engine/scheduler.h"
#include "model/model_source.h"
#include "server/server.h"

namespace deltainfer::cli {
namespace {

constexpr int64_t kDefaultContextCap = 8192;  // as `generate` without --ctx-size

struct ServeOptions {
  engine::EngineConfig engine;
  BackendOptions backend;
  AttentionOptions attention;
  server::ServerOptions http;
  engine::SchedulerOptions scheduler;
  int64_t max_context = 0;
  double kv_memory_gb = 1.0;
  double max_body_mb = 16.0;
  // Whether --step-tokens / --max-stall were given; if not, the backend's defaults apply.
  const CLI::Option* step_tokens_given = nullptr;
  const CLI::Option* max_stall_given = nullptr;
};

// Defaults measured on the H200 (docs/BENCHMARKS.md, serving): 2048-token passes let a GPU read
// prompts fast enough for 32 clients, and --max-stall 1.5 keeps decoding within 2x while long
// prompts arrive. The CPU keeps 512 and no spacing: its passes are long already.
void apply_backend_defaults(ServeOptions& o) {
  if (o.backend.kind != engine::BackendKind::Cuda) return;
  if (o.step_tokens_given->count() == 0) o.scheduler.step_tokens = 2048;
  if (o.max_stall_given->count() == 0) o.scheduler.max_stall = 1.5;
}

// The pool --kv-memory buys, at least one sequence of the whole context (what a request without
// max_tokens reserves).
int64_t kv_pages(const ServeOptions& o, const model::ModelConfig& model, int64_t context) {
  if (!(o.kv_memory_gb > 0)) throw_input_error("--kv-memory must be > 0 GB (got {})", o.kv_memory_gb);
  const double bytes = o.kv_memory_gb * double(int64_t{1} << 30);
  const int64_t pages = static_cast<int64_t>(bytes / static_cast<double>(kv_page_bytes(model, o.backend)));
  const int64_t one_sequence = pages_for_positions(context);
  if (pages < one_sequence) {
    fmt::print(stderr, "serve: --kv-memory {} GB holds {} pages, less than one sequence of {} tokens; using {} pages\n",
               o.kv_memory_gb, pages, context, one_sequence);
  }
  return std::max(pages, one_sequence);
}

std::string served_name(const std::string& model_path) {
  std::filesystem::path path(model_path);
  if (path.filename().empty()) path = path.parent_path();
  return path.extension() == ".gguf" ? path.stem().string() : path.filename().string();
}

// SIGTERM / SIGINT write their number to a pipe (all a handler may safely do; any thread, an
// OpenBLAS worker included, may take the signal) that a waiting thread reads.
int g_signal_pipe[2] = {-1, -1};

void on_termination_signal(int signal) {
  const unsigned char byte = static_cast<unsigned char>(signal);
  [[maybe_unused]] const ssize_t written = write(g_signal_pipe[1], &byte, 1);
}

void install_termination_handlers() {
  if (pipe(g_signal_pipe) != 0) throw_error("serve: cannot create the signal pipe");
  struct sigaction action {};
  action.sa_handler = on_termination_signal;
  action.sa_flags = SA_RESTART;  // the listener's accept() must not fail with EINTR
  sigemptyset(&action.sa_mask);
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
}

// Blocks until a termination signal (its number) or the pipe's write end is written by us (0).
int wait_for_termination() {
  unsigned char byte = 0;
  while (read(g_signal_pipe[0], &byte, 1) < 0 && errno == EINTR) {
  }
  return byte;
}

int run_serve(ServeOptions& o) {
  if (!o.attention.fidelity_path.empty()) throw_input_error("--fidelity is not available in serve");
  if (!(o.max_body_mb > 0)) throw_input_error("--max-body-mb must be > 0 (got {})", o.max_body_mb);
  o.http.max_body_bytes = static_cast<size_t>(o.max_body_mb * double(1 << 20));
  install_termination_handlers();
  apply_backend_defaults(o);

  const model::ModelConfig model_config = model::open_model_source(o.engine.model_path)->config();
  const int64_t context = o.max_context > 0 ? o.max_context : std::min(model_config.context_length, kDefaultContextCap);
  o.engine.context = context;
  o.backend.apply_to(o.engine);
  o.engine.attention = o.attention.to_config();
  o.engine.kv_pages = kv_pages(o, model_config, context);
  o.engine.prefill_chunk = o.scheduler.step_tokens;
  o.engine.max_batch = static_cast<int>(o.scheduler.max_batch);
  engine::Engine engine = engine::Engine::open(o.engine, o.backend.factory());
  engine::Scheduler scheduler(engine.transformer(), engine.tokenizer(), o.engine.attention, o.scheduler);

  server::ServedModel served;
  served.tokenizer = &engine.tokenizer();
  served.name = served_name(o.engine.model_path);
  served.capacity = engine.transformer().capacity();
  served.n_layers = model_config.n_layers;
  served.default_method = o.engine.attention;
  server::Server http(scheduler, served, o.http);
  const int port = http.bind();

  const engine::SchedulerStats stats = scheduler.stats();
  fmt::print(stderr, "serve: {} | {} | {} | KV pool {} pages of {} tokens | method: {}\n", served.name,
             stats.batched ? fmt::format("up to {} sequences per batch", scheduler.options().max_batch)
                           : std::string("one sequence at a time (this backend does not batch)"),
             fmt::format("context {}", served.capacity), stats.kv.total_pages, stats.kv.page_tokens,
             attention::describe(o.engine.attention));
  fmt::print(stderr, "serve: listening on http://{}:{}\n", o.http.host, port);

  std::thread waiter([&] {
    const int signal = wait_for_termination();
    if (signal != 0) fmt::print(stderr, "serve: signal {}: finishing the running requests\n", signal);
    http.shutdown();
  });
  http.serve();
  const unsigned char wake = 0;  // the listener stopped by itself: wake the waiter
  [[maybe_unused]] const ssize_t written = write(g_signal_pipe[1], &wake, 1);
  waiter.join();
  fmt::print(stderr, "serve: stopped\n");
  return 0;
}

}  // namespace

Command register_serve(CLI::App& app) {
  auto o = std::make_shared<ServeOptions>();
  CLI::App* cmd = app.add_subcommand("serve", "Serve a model over an OpenAI-compatible HTTP API");
  cmd->add_option("-m,--model", o->engine.model_path, "GGUF file or HF model directory")->required();
  cmd->add_option("--host", o->http.host, "Address to bind")->capture_default_str();
  cmd->add_option("--port", o->http.port, "Port (0: any free port, printed on stderr)")->capture_default_str()
      ->check(CLI::Range(0, 65535));
  cmd->add_option("--max-batch", o->scheduler.max_batch, "Sequences decoded together")->capture_default_str()
      ->check(CLI::Range(1, 4096));
  cmd->add_option("--max-queue", o->scheduler.max_queue, "Requests waiting for admission (more: 429)")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  o->step_tokens_given =
      cmd->add_option("--step-tokens", o->scheduler.step_tokens,
                      "Tokens of one forward pass (decodes + prefill chunks); default 512 on the CPU, 2048 on CUDA")
          ->check(CLI::PositiveNumber);
  o->max_stall_given =
      cmd->add_option("--max-stall", o->scheduler.max_stall,
                      "Space the passes that read prompts beside running decodes so that those sequences' mean pass "
                      "time stays within this many times a pass of decodes alone (0: no bound); default 0 on the "
                      "CPU, 1.5 on CUDA");
  cmd->add_option("--max-context", o->max_context, "Positions of one sequence (0: model context, max 8192)")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  cmd->add_option("--kv-memory", o->kv_memory_gb, "GB of KV cache shared by all sequences")->capture_default_str();
  cmd->add_option("--api-key", o->http.api_key, "Require Authorization: Bearer KEY on /v1/*, /tokenize, /detokenize");
  cmd->add_option("--max-body-mb", o->max_body_mb, "Largest request body in MiB (more: 413)")->capture_default_str();
  cmd->add_option("--http-threads", o->http.http_threads, "Connections served at once")->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("-t,--threads", o->engine.threads, "CPU threads (0: all)")->check(CLI::NonNegativeNumber);
  o->backend.add_to(*cmd);
  o->attention.add_to(*cmd);
  return {cmd, [o] { return run_serve(*o); }};
}

}  // namespace deltainfer::cli
