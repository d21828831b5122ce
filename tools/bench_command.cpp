// `deltainfer bench`: end-to-end prefill time and decode ms/token of a model (real or synthetic)
// at several context lengths, next to the floors set by the hardware.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "attention_options.h"
#include "backend_options.h"
#include "batch_bench.h"
#include "bench_costs.h"
#include "commands.h"
#include "core/error.h"
#include "engine/engine.h"
#include "prefill_progress.h"

#ifdef DELTAINFER_WITH_CUDA
#include "backend/cuda/hardware_rates.h"
#endif

namespace deltainfer::cli {
namespace {

struct BenchOptions {
  engine::EngineConfig engine;
  BackendOptions backend;
  AttentionOptions attention;
  std::vector<int64_t> lengths{8192, 32768, 131072};
  int64_t decode_tokens = 32;
  double peak_tflops = 0.0;     // 0: measured in this run (CUDA), else no prefill floor
  double peak_tbps = 0.0;       // 0: measured in this run (CUDA), else no decode floor
  bool logits_to_host = false;  // decode as before device sampling: every step copies the logits back
  int batch = 0;                // sequences decoding together; 0: the single-sequence table
  int64_t mixed_chunk = 0;      // batched table: a prefill chunk of this many tokens beside the decodes
  ProgressMode progress = ProgressMode::Auto;
};

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// The ceilings the floors divide by: given ones stay; on CUDA the others are measured on the
// device before the model takes its memory. On the CPU an unknown one leaves its floor out.
void settle_ceilings(BenchOptions& o) {
  if (o.peak_tflops > 0 && o.peak_tbps > 0) return;
  if (o.backend.kind != engine::BackendKind::Cuda) return;
#ifdef DELTAINFER_WITH_CUDA
  const cuda::HardwareRates measured = cuda::measure_hardware_rates();
  if (o.peak_tbps <= 0) o.peak_tbps = measured.copy_tbps;
  if (o.peak_tflops <= 0) o.peak_tflops = measured.gemm_tflops;
  fmt::print("device ceilings measured in this run: copy {:.3f} TB/s (2 GiB device to device, read + write), "
             "bf16 GEMM {:.1f} TFLOP/s (cuBLASLt, 8192^3)\n", measured.copy_tbps, measured.gemm_tflops);
#endif
}

// "n/a" where the ceiling is unknown.
std::string floor_cell(double ceiling, double seconds_at_one, double scale, const char* format) {
  if (ceiling <= 0) return "n/a";
  return fmt::format(fmt::runtime(format), scale * seconds_at_one / ceiling);
}

int run_bench(BenchOptions& o) {
  if (o.decode_tokens < 1) throw_input_error("--decode-tokens must be >= 1");
  if (o.peak_tflops < 0 || o.peak_tbps < 0) throw_input_error("--peak-tflops and --peak-tbps must be >= 0");
  o.engine.attention = o.attention.to_config();
  o.backend.apply_to(o.engine);
  settle_ceilings(o);
  const int64_t longest = *std::max_element(o.lengths.begin(), o.lengths.end());
  o.engine.context = longest;
  if (o.batch > 0 || o.mixed_chunk > 0) {
    o.batch = std::max(o.batch, 1);
    o.engine.max_batch = o.batch + (o.mixed_chunk > 0 ? 1 : 0);
    engine::Engine engine = engine::Engine::open(o.engine, o.backend.factory());
    return run_batch_bench(engine, o.engine.attention,
                           BatchBenchOptions{o.batch, o.mixed_chunk, o.lengths, o.decode_tokens, o.peak_tbps,
                                             o.engine.kv_dtype});
  }
  engine::Engine engine = engine::Engine::open(o.engine, o.backend.factory());
  runtime::Transformer& model = engine.transformer();
  show_prefill_progress(model, o.progress);
  const model::ModelConfig& c = model.config();
  const ModelCosts costs = model_costs(c, o.engine.kv_dtype);
  std::mt19937 rng(1234);
  std::uniform_int_distribution<int32_t> token(0, c.vocab_size - 1);
  std::vector<float> logits(static_cast<size_t>(c.vocab_size));

  // As `generate` decodes: where the backend picks the token on its device, only the id comes back.
  const bool on_device = model.samples_on_device() && !o.logits_to_host;
  fmt::print("model {} ({} layers, {}/{} heads, d {}), backend {}, prefill chunk {}, decode step ends with {}\n",
             c.name, c.n_layers, c.n_heads, c.n_kv_heads, c.head_dim,
             o.backend.kind == engine::BackendKind::Cuda ? "cuda" : "cpu", o.engine.prefill_chunk,
             on_device ? "a greedy token chosen on the device" : "the logits on the host");
  fmt::print("| context | prefill s | prefill floor s | prefill tok/s | decode ms/token | decode floor ms | "
             "decode % of floor |\n|---|---|---|---|---|---|---|\n");
  for (int64_t length : o.lengths) {
    const int64_t prompt = length - o.decode_tokens;
    if (prompt < 1) throw_input_error("context {} is not longer than --decode-tokens {}", length, o.decode_tokens);
    std::vector<int32_t> tokens(static_cast<size_t>(prompt));
    for (int32_t& t : tokens) t = token(rng);
    model.truncate(0);
    const auto prefill_start = std::chrono::steady_clock::now();
    model.forward(tokens.data(), prompt, runtime::LogitsFor::LastToken, logits.data());
    const double prefill_s = seconds_since(prefill_start);

    std::vector<double> step_ms;
    int32_t next = token(rng);
    for (int64_t i = 0; i < o.decode_tokens; ++i) {
      const auto step_start = std::chrono::steady_clock::now();
      if (on_device) {
        (void)model.forward_and_sample(&next, 1, runtime::DeviceSampling{});
      } else {
        model.forward(&next, 1, runtime::LogitsFor::LastToken, logits.data());
      }
      step_ms.push_back(1e3 * seconds_since(step_start));
      next = token(rng);
    }
    // The first step of a context bucket captures its CUDA graph; the median ignores it.
    std::sort(step_ms.begin(), step_ms.end());
    const double decode_ms = step_ms[step_ms.size() / 2];
    const double n = static_cast<double>(prompt);
    // Floors at a ceiling of 1 TFLOP/s and 1 TB/s, then scaled by the measured or given ones: what
    // this method must compute in prefill and read in a decode step (dense: every causal pair and
    // the whole cache; DELTA reads the whole cache only in its dense and Δ layers).
    const double prefill_at_one = prefill_flops(costs, o.engine.attention, prompt) / 1e12;
    const double decode_at_one = (costs.weight_bytes + attended_kv_bytes(costs, o.engine.attention, length)) / 1e12;
    const std::string of_floor =
        o.peak_tbps > 0 ? fmt::format("{:.0f}%", 100.0 * 1e3 * decode_at_one / o.peak_tbps / decode_ms) : "n/a";
    fmt::print("| {} | {:.3f} | {} | {:.0f} | {:.3f} | {} | {} |\n", length, prefill_s,
               floor_cell(o.peak_tflops, prefill_at_one, 1.0, "{:.3f}"), n / prefill_s, decode_ms,
               floor_cell(o.peak_tbps, decode_at_one, 1e3, "{:.3f}"), of_floor);
  }
  fmt::print("floors: prefill = (linear FLOPs + the attention FLOPs of the pairs this method attends) / {:g} TFLOP/s; "
             "decode = (bf16 weights + the {} KV cache bytes this method reads) / {:.3f} TB/s{}\n", o.peak_tflops,
             kv_dtype_name(o.engine.kv_dtype), o.peak_tbps,
             o.peak_tflops > 0 && o.peak_tbps > 0 ? "" : " (n/a: no ceiling given, and none measured on the CPU)");
  return 0;
}

}  // namespace

Command register_bench(CLI::App& app) {
  auto o = std::make_shared<BenchOptions>();
  o->engine.prefill_chunk = 4096;
  CLI::App* cmd = app.add_subcommand("bench", "Time end-to-end prefill and decode (e.g. --model synthetic:llama3-8b)");
  cmd->add_option("-m,--model", o->engine.model_path, "GGUF file, HF directory or synthetic:<shape>")->required();
  cmd->add_option("--lengths", o->lengths, "Context lengths to measure")->delimiter(',')->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--decode-tokens", o->decode_tokens, "Decode steps timed at each length")->capture_default_str();
  cmd->add_option("--prefill-chunk", o->engine.prefill_chunk, "Prompt tokens per forward chunk")
      ->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--peak-tflops", o->peak_tflops,
                  "Compute ceiling for the prefill floor in TFLOP/s (default: measured on the GPU in this run; CPU: "
                  "no floor)");
  cmd->add_option("--peak-tbps", o->peak_tbps,
                  "Memory ceiling for the decode floors in TB/s (default: measured on the GPU in this run; CPU: no "
                  "floor)");
  cmd->add_option("-t,--threads", o->engine.threads, "CPU threads (0: all)")->check(CLI::NonNegativeNumber);
  cmd->add_option("--batch", o->batch, "Sequences decoding together, in one forward pass per step (the batched table)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--mixed-chunk", o->mixed_chunk,
                  "Batched table: also time steps with a prefill chunk of this many tokens beside the decodes")
      ->check(CLI::NonNegativeNumber);
  add_progress_option(*cmd, o->progress);
  cmd->add_flag("--logits-to-host", o->logits_to_host,
                "Decode steps copy the logits to the host even where the backend samples on its device");
  o->backend.add_to(*cmd);
  o->attention.add_to(*cmd);
  return {cmd, [o] { return run_bench(*o); }};
}

}  // namespace deltainfer::cli
