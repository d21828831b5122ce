// `deltainfer eval`: long-context accuracy of attention methods on the same seeded samples
// (RULER-style retrieval tasks, perplexity / LongPPL). Markdown tables to stdout, progress to
// stderr, everything (every answer included) to --json.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "backend/cpu/quant/panel_matmul.h"
#include "backend_options.h"
#include "commands.h"
#include "core/error.h"
#include "core/kv_page.h"
#include "engine/engine.h"
#include "eval/filler_corpus.h"
#include "eval/method_spec.h"
#include "eval/report.h"
#include "eval/runner.h"
#include "eval/tasks.h"
#include "model/model_source.h"

namespace deltainfer::cli {
namespace {

struct EvalOptions {
  engine::EngineConfig engine;
  BackendOptions backend;
  std::string tasks = "passkey,niah_single,niah_multikey,niah_multivalue,niah_multiquery,vt";
  std::vector<int64_t> lengths = {2048};
  int samples = 50;
  uint64_t seed = 0;
  std::string methods = "dense";
  std::string json_path;
  std::string markdown_path;
  std::string filler_dir;
  bool perplexity = false;
  bool fidelity = false;
  int perplexity_texts = 2;
  int64_t short_context = 0;
  int64_t decode_tail = 256;
  int batch = 0;             // 0: 1 on the CPU, kCudaBatch on CUDA (within --kv-memory)
  double kv_memory_gb = 0;   // 0: a pool of `batch` sequences of each length
  bool no_share_prefill = false;
};

// Samples answered at once on CUDA by default: 16 sequences of 32K of Qwen2.5-Coder-0.5B are
// 6 GB of KV, and a decode pass of 16 costs little more than one of 1.
constexpr int kCudaBatch = 16;

// The batch and KV pool of the run: --batch (or its default), checked against what --kv-memory
// holds at the longest length.
struct BatchPool {
  int batch = 1;
  int64_t kv_pages = 0;  // 0: the engine's default, batch sequences of the length
};

BatchPool resolve_batch(const EvalOptions& o) {
  if (o.batch < 0) throw_input_error("--batch must be >= 1 (got {})", o.batch);
  BatchPool pool;
  pool.batch = o.batch > 0 ? o.batch : (o.backend.kind == engine::BackendKind::Cuda ? kCudaBatch : 1);
  // From kPanelMinRows decode rows on, the CPU multiplies through f32 panels instead of the 8-bit
  // path a sample alone takes: its answers could change.
  if (o.backend.kind == engine::BackendKind::Cpu && pool.batch >= backend::cpu::quant::kPanelMinRows) {
    throw_input_error("--batch {}: on the CPU at most {} (a larger decode pass takes another matmul path, "
                      "so its answers could differ from a sample's alone)",
                      pool.batch, backend::cpu::quant::kPanelMinRows - 1);
  }
  if (o.kv_memory_gb == 0) return pool;
  if (!(o.kv_memory_gb > 0)) throw_input_error("--kv-memory must be > 0 GB (got {})", o.kv_memory_gb);
  const model::ModelConfig model = model::open_model_source(o.engine.model_path)->config();
  const int64_t longest = o.lengths.empty() ? 0 : *std::max_element(o.lengths.begin(), o.lengths.end());
  const int64_t per_sequence = pages_for_positions(longest);
  pool.kv_pages = static_cast<int64_t>(o.kv_memory_gb * double(int64_t{1} << 30) /
                                       static_cast<double>(kv_page_bytes(model, o.backend)));
  const int64_t fits = per_sequence > 0 ? pool.kv_pages / per_sequence : 0;
  if (fits < 1) {
    throw_input_error("--kv-memory {} GB holds {} KV pages, less than one sequence of {} tokens ({} pages)",
                      o.kv_memory_gb, pool.kv_pages, longest, per_sequence);
  }
  if (o.batch > fits) {
    throw_input_error("--batch {} needs {} KV pages for sequences of {} tokens; --kv-memory {} GB holds {} "
                      "(--batch {} at most)",
                      o.batch, o.batch * per_sequence, longest, o.kv_memory_gb, pool.kv_pages, fits);
  }
  pool.batch = static_cast<int>(std::min<int64_t>(pool.batch, fits));
  return pool;
}

std::vector<std::string> split_commas(const std::string& text) {
  std::vector<std::string> parts;
  std::stringstream in(text);
  for (std::string part; std::getline(in, part, ',');) {
    if (!part.empty()) parts.push_back(part);
  }
  return parts;
}

std::string command_line(const EvalOptions& o) {
  std::string line = fmt::format("deltainfer eval --model {} --backend {} --tasks {} --lengths {} --samples {} --seed {} "
                                 "--methods \"{}\"",
                                 o.engine.model_path, o.backend.kind == engine::BackendKind::Cuda ? "cuda" : "cpu",
                                 o.tasks, fmt::join(o.lengths, ","), o.samples, o.seed, o.methods);
  if (o.perplexity) {
    line += fmt::format(" --perplexity --ppl-texts {} --longppl-short {} --decode-tail {}", o.perplexity_texts,
                        o.short_context, o.decode_tail);
  }
  return line;
}

void write_file(const std::string& path, const std::string& text, const char* flag) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  if (!out) throw_input_error("{} {}: cannot write the file", flag, path);
}

int run_eval_command(const EvalOptions& o) {
  eval::EvalPlan plan;
  for (const std::string& name : split_commas(o.tasks)) {
    if (name != "none") plan.tasks.push_back(eval::parse_task(name));
  }
  plan.lengths = o.lengths;
  plan.samples = o.samples;
  plan.seed = o.seed;
  plan.methods = eval::parse_method_specs(o.methods);
  plan.perplexity = o.perplexity;
  plan.perplexity_texts = o.perplexity_texts;
  plan.longppl_short_context = o.short_context;
  plan.decode_tail = o.decode_tail;
  plan.prefill_chunk = o.engine.prefill_chunk;
  plan.fidelity = o.fidelity;
  const BatchPool pool = resolve_batch(o);
  plan.batch = pool.batch;
  plan.share_prefill = !o.no_share_prefill;
  const std::string filler_dir = o.filler_dir.empty() ? eval::find_filler_dir() : o.filler_dir;
  const eval::FillerCorpus corpus = eval::FillerCorpus::load(filler_dir);

  const engine::TransformerFactory factory = o.backend.factory();
  const eval::EngineOpener open = [&](const attention::AttentionConfig& attention, int64_t context, int max_batch) {
    engine::EngineConfig config = o.engine;
    o.backend.apply_to(config);
    config.attention = attention;
    config.context = context;
    config.max_batch = max_batch;
    config.kv_pages = pool.kv_pages;
    return engine::Engine::open(config, factory);
  };
  const nlohmann::json run = {{"command", command_line(o)}, {"model", o.engine.model_path},
                              {"backend", o.backend.kind == engine::BackendKind::Cuda ? "cuda" : "cpu"},
                              {"samples", o.samples}, {"seed", o.seed}, {"filler", filler_dir},
                              {"batch", plan.batch}, {"share_prefill", plan.share_prefill}};
  // The files hold the methods finished so far, so that an interrupted run keeps its results.
  const auto save = [&](eval::EvalReport report, bool complete) {
    report.run = run;
    report.run["complete"] = complete;
    const std::string tables = eval::markdown_tables(report);
    if (!o.markdown_path.empty()) write_file(o.markdown_path, tables, "--markdown");
    if (!o.json_path.empty()) write_file(o.json_path, eval::to_json(report).dump(1) + "\n", "--json");
    return tables;
  };
  const eval::EvalReport report =
      eval::run_eval(plan, corpus, filler_dir, open, [&](const eval::EvalReport& partial) { save(partial, false); });
  fmt::print(stdout, "{}", save(report, true));
  return 0;
}

}  // namespace

Command register_eval(CLI::App& app) {
  auto o = std::make_shared<EvalOptions>();
  CLI::App* cmd = app.add_subcommand("eval", "Long-context accuracy of attention methods (RULER-style tasks, LongPPL)");
  cmd->add_option("-m,--model", o->engine.model_path, "GGUF file or HF model directory")->required();
  cmd->add_option("--tasks", o->tasks,
                  "Comma-separated: passkey, niah_single, niah_multikey, niah_multivalue, niah_multiquery, vt "
                  "(none: perplexity only)")
      ->capture_default_str();
  cmd->add_option("--lengths", o->lengths, "Context lengths in model tokens (prompt + answer budget)")
      ->delimiter(',')->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--samples", o->samples, "Samples per task and length")->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--seed", o->seed, "Seed of the samples")->capture_default_str();
  cmd->add_option("--methods", o->methods,
                  "';'-separated methods with ':'key=value,... e.g. \"dense;sliding+delta:window=512,gamma=32;"
                  "delta:budget=25%;streaming;quest\" (see src/eval/method_config.h)")
      ->capture_default_str();
  cmd->add_option("--json", o->json_path, "Write every result to this JSON file (for scripts/plot)");
  cmd->add_option("--markdown", o->markdown_path, "Also write the tables to this file");
  cmd->add_flag("--fidelity", o->fidelity,
                "Instrument every method: per-layer attention cosine vs dense, attended tokens and recall, in "
                "the --json file (--backend cuda: prefill only, dense and sliding[+delta]; runs --batch 1)");
  cmd->add_option("--filler", o->filler_dir, "Directory of filler texts (default: the shipped data/filler)");
  cmd->add_flag("--perplexity", o->perplexity, "Also measure perplexity and LongPPL on real prose");
  cmd->add_option("--ppl-texts", o->perplexity_texts, "Prose windows per length for perplexity")
      ->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--longppl-short", o->short_context, "LongPPL: the short context K in tokens (0: length / 8)")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  cmd->add_option("--decode-tail", o->decode_tail, "Perplexity: last tokens fed one at a time (decode path)")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  cmd->add_option("-t,--threads", o->engine.threads, "CPU threads (0: all)")->check(CLI::NonNegativeNumber);
  cmd->add_option("--prefill-chunk", o->engine.prefill_chunk, "Prompt tokens per forward chunk")
      ->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--batch", o->batch,
                  fmt::format("Samples of one length answered at once (0: 1 on the CPU, {} on CUDA, within "
                              "--kv-memory); answers do not depend on it", kCudaBatch))
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  cmd->add_option("--kv-memory", o->kv_memory_gb,
                  "GB of KV cache for the batch (0: room for --batch sequences of each length)")
      ->capture_default_str();
  cmd->add_flag("--no-share-prefill", o->no_share_prefill,
                "Prefill every prompt once per method, even for methods that prefill alike (dense, delta, "
                "quest, tidal); with --batch 1 this is the sequential path through engine::generate");
  o->backend.add_to(*cmd);
  return {cmd, [o] { return run_eval_command(*o); }};
}

}  // namespace deltainfer::cli
