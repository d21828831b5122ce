#include "eval/runner.h"

#include <fmt/format.h>

#include <algorithm>
#include <optional>
#include <utility>

#include "attention/method_registry.h"
#include "core/error.h"
#include "eval/batched_answers.h"
#include "eval/chat_prompt.h"
#include "eval/method_config.h"
#include "eval/perplexity.h"
#include "eval/prefill_groups.h"
#include "core/progress.h"
#include "eval/scoring.h"
#include "eval/seeded_random.h"

namespace deltainfer::eval {
namespace {

struct PreparedSample {
  TaskKind task;
  int64_t length;
  int index;
  uint64_t seed;
  TaskPrompt prompt;
  std::vector<int32_t> tokens;
};

struct PerplexityText {
  int64_t length;
  std::string label;
  std::vector<int32_t> tokens;
  std::vector<int64_t> key_tokens;
};

// The prose texts of the filler directory, whitespace-normalized (FillerCorpus), one string.
std::string perplexity_prose(const std::string& filler_dir) {
  std::string prose;
  for (const char* name : {"lcet10.txt", "alice29.txt"}) {
    const FillerCorpus text = FillerCorpus::from_text(read_filler_text(filler_dir, name));
    for (const std::string& sentence : text.sentences()) prose += sentence;
  }
  return prose;
}

// The fidelity report of an engine's default sequence (--fidelity instruments it).
nlohmann::json fidelity_of(engine::Engine& engine) {
  std::optional<nlohmann::json> report = engine.transformer().attention_fidelity();
  if (!report) throw_input_error("--fidelity: this backend does not report attention fidelity");
  return std::move(*report);
}

void check_plan(const EvalPlan& plan, engine::Engine& reference) {
  if (plan.tasks.empty() && !plan.perplexity) throw_input_error("--tasks: nothing to run");
  if (plan.lengths.empty()) throw_input_error("--lengths: no length given");
  if (plan.samples < 1 && !plan.tasks.empty()) throw_input_error("--samples must be >= 1 (got {})", plan.samples);
  const int64_t trained = reference.model_config().context_length;
  for (int64_t length : plan.lengths) {
    if (length < 64 || length > trained) {
      throw_input_error("--lengths: {} must lie in [64, {}] (the model's trained context)", length, trained);
    }
    for (const MethodSpec& method : plan.methods) method_config(method, length);  // throws on a bad method
  }
}

std::vector<PreparedSample> prepare_samples(const EvalPlan& plan, const FillerCorpus& corpus,
                                            const tokenizer::Tokenizer& tokenizer) {
  std::vector<PreparedSample> samples;
  const PromptTokenCounter count = chat_token_counter(tokenizer);
  Progress progress("preparing samples", static_cast<int64_t>(plan.tasks.size() * plan.lengths.size()));
  for (TaskKind task : plan.tasks) {
    for (int64_t length : plan.lengths) {
      for (int i = 0; i < plan.samples; ++i) {
        PreparedSample s{task, length, i, sample_seed(plan.seed, task, length, i), {}, {}};
        // Depths of the first needle spread evenly over the context: sample i of n sits at (i + ½)/n.
        const double depth = (i + 0.5) / plan.samples;
        s.prompt = make_task_prompt(task, {s.seed, length - answer_token_budget(task), depth}, corpus, count);
        s.tokens = encode_task_prompt(tokenizer, s.prompt.user, s.prompt.answer_prefix);
        samples.push_back(std::move(s));
      }
      progress.advance(1, fmt::format("{} {}", task_name(task), length));
    }
  }
  return samples;
}

std::vector<PerplexityText> prepare_perplexity(const EvalPlan& plan, const std::string& filler_dir,
                                               engine::Engine& reference) {
  std::vector<PerplexityText> texts;
  if (!plan.perplexity) return texts;
  const std::vector<int32_t> prose = reference.tokenizer().encode(perplexity_prose(filler_dir), false);
  Progress progress("selecting LongPPL key tokens (dense)", static_cast<int64_t>(plan.lengths.size()) * plan.perplexity_texts);
  for (int64_t length : plan.lengths) {
    SeededRandom random(sample_seed(plan.seed, TaskKind::Passkey, length, -1));
    for (int t = 0; t < plan.perplexity_texts; ++t) {
      const auto offset = static_cast<int64_t>(random.below(prose.size() - static_cast<size_t>(length)));
      PerplexityText text{length, fmt::format("prose@{}", offset), {}, {}};
      text.tokens.assign(prose.begin() + offset, prose.begin() + offset + length);
      const std::vector<double> full =
          token_nlls(reference.transformer(), text.tokens, reference.transformer().prefill_chunk(), 0);
      const int64_t k = plan.longppl_short_context > 0 ? plan.longppl_short_context : std::max<int64_t>(1, length / 8);
      const std::vector<double> shorter =
          short_context_nlls(reference.transformer(), text.tokens, k, std::max<int64_t>(1, k / 4));
      text.key_tokens = select_key_tokens(full, shorter);
      texts.push_back(std::move(text));
      progress.advance(1, fmt::format("length {}", length));
    }
  }
  return texts;
}

int64_t budget_tokens(const attention::AttentionConfig& c) {
  const int64_t decode_tokens = attention::decode_method(c.decode.kind).sparse_tokens(c);
  if (decode_tokens > 0) return decode_tokens;
  return attention::prefill_method(c.prefill.kind).kept_keys(c).value_or(0);
}

SampleOutcome outcome_of(const PreparedSample& s, const std::string& method, const BatchedAnswer& answer) {
  SampleOutcome out;
  out.task = task_name(s.task);
  out.length = s.length;
  out.method = method;
  out.index = s.index;
  out.seed = s.seed;
  out.depth = s.prompt.depths.at(0);
  out.prompt_tokens = static_cast<int64_t>(s.tokens.size());
  out.expected = s.prompt.expected;
  out.answer = answer.text;
  out.score = string_match_all(answer.text, s.prompt.expected);
  out.prefill_seconds = answer.prefill_seconds;
  out.decode_seconds = answer.decode_seconds;
  out.generated_tokens = answer.generated_tokens;
  return out;
}

SampleOutcome answer(engine::Engine& engine, const PreparedSample& s, const std::string& method) {
  engine::GenerationRequest request;
  request.prompt = s.tokens;
  request.max_tokens = answer_token_budget(s.task);
  request.sampling.temperature = 0.0f;
  const engine::GenerationResult result = engine.generate(request);
  return outcome_of(s, method,
                    {result.text, result.timings.generated_tokens, result.timings.prefill_seconds,
                     result.timings.decode_seconds});
}

PerplexityOutcome score_text(engine::Engine& engine, const PerplexityText& text, const EvalPlan& plan,
                             const std::string& method) {
  // The backend's chunk, not plan.prefill_chunk: the CUDA backend rounds a Δ method's chunk to a
  // multiple of its γ (and up to γ when γ is larger: the dense tail alone, γ 65536), and refuses a
  // chunk that starts elsewhere. The tasks read prompts in the same chunks (batched_answers.cpp).
  const std::vector<double> nlls =
      token_nlls(engine.transformer(), text.tokens, engine.transformer().prefill_chunk(), plan.decode_tail);
  const std::vector<double> tail(nlls.end() - std::min<int64_t>(plan.decode_tail, static_cast<int64_t>(nlls.size())),
                                 nlls.end());
  PerplexityOutcome out;
  out.method = method;
  out.length = text.length;
  out.text = text.label;
  out.ppl = perplexity(nlls);
  out.ppl_decode = perplexity(tail);
  out.longppl = perplexity(nlls, text.key_tokens);
  out.scored_tokens = static_cast<int64_t>(nlls.size());
  out.key_tokens = static_cast<int64_t>(text.key_tokens.size());
  return out;
}

}  // namespace

uint64_t sample_seed(uint64_t run_seed, TaskKind task, int64_t length, int index) {
  SeededRandom mix(run_seed);
  uint64_t seed = mix.next();
  for (uint64_t part : {static_cast<uint64_t>(task), static_cast<uint64_t>(length), static_cast<uint64_t>(index)}) {
    seed = SeededRandom(seed ^ part).next();
  }
  return seed;
}

namespace {

EvalReport empty_report(const EvalPlan& plan) {
  EvalReport report;
  for (const MethodSpec& m : plan.methods) report.methods.push_back(m.label);
  report.lengths = plan.lengths;
  for (TaskKind task : plan.tasks) report.tasks.push_back(task_name(task));
  return report;
}

MethodAtLength cost_of(const std::string& label, const attention::AttentionConfig& config, int64_t length, int n_layers) {
  return {label, length, attention::describe(config), attended_share(config, length, n_layers), budget_tokens(config)};
}

struct Prepared {
  int n_layers = 0;
  std::vector<PreparedSample> samples;
  std::vector<PerplexityText> texts;
};

// One engine per method and length; every sample through engine::generate.
EvalReport run_sequential(const EvalPlan& plan, const Prepared& prepared, const EngineOpener& open,
                          const EvalCheckpoint& checkpoint) {
  EvalReport report = empty_report(plan);
  const auto per_method = static_cast<int64_t>(prepared.samples.size() + prepared.texts.size());
  Progress progress("eval", per_method * static_cast<int64_t>(plan.methods.size()));
  for (const MethodSpec& method : plan.methods) {
    for (int64_t length : plan.lengths) {
      attention::AttentionConfig config = method_config(method, length);
      config.instrument = plan.fidelity;
      report.costs.push_back(cost_of(method.label, config, length, prepared.n_layers));
      engine::Engine engine = open(config, length, 1);
      for (const PreparedSample& s : prepared.samples) {
        if (s.length != length) continue;
        report.samples.push_back(answer(engine, s, method.label));
        progress.advance(1, fmt::format("{} {} {}", method.label, task_name(s.task), length));
      }
      for (const PerplexityText& text : prepared.texts) {
        if (text.length != length) continue;
        report.perplexity.push_back(score_text(engine, text, plan, method.label));
        progress.advance(1, fmt::format("{} perplexity {}", method.label, length));
      }
      if (plan.fidelity) report.fidelity.push_back({method.label, length, fidelity_of(engine)});
    }
    if (checkpoint) checkpoint(report);
  }
  progress.finish();
  return report;
}

// What one method answered at one length (batched path).
struct Cell {
  bool done = false;
  MethodAtLength cost;
  std::vector<SampleOutcome> samples;
  std::vector<PerplexityOutcome> perplexity;
};

// The finished cells, method by method and length by length: the sequential path's order.
EvalReport assemble(const EvalPlan& plan, const std::vector<std::vector<Cell>>& cells) {
  EvalReport report = empty_report(plan);
  for (const std::vector<Cell>& method : cells) {
    for (const Cell& cell : method) {
      if (!cell.done) continue;
      report.costs.push_back(cell.cost);
      report.samples.insert(report.samples.end(), cell.samples.begin(), cell.samples.end());
      report.perplexity.insert(report.perplexity.end(), cell.perplexity.begin(), cell.perplexity.end());
    }
  }
  return report;
}

// Per length, per prefill group: one engine whose pool holds plan.batch sequences; the samples
// answered in batches under every method of the group (batched_answers.h); perplexity on the
// engine's default sequence switched to each method in turn.
EvalReport run_batched(const EvalPlan& plan, const Prepared& prepared, const EngineOpener& open,
                       const EvalCheckpoint& checkpoint) {
  std::vector<std::vector<Cell>> cells(plan.methods.size(), std::vector<Cell>(plan.lengths.size()));
  const auto per_method = static_cast<int64_t>(prepared.samples.size() + prepared.texts.size());
  Progress progress("eval", per_method * static_cast<int64_t>(plan.methods.size()));
  for (size_t l = 0; l < plan.lengths.size(); ++l) {
    const int64_t length = plan.lengths[l];
    std::vector<attention::AttentionConfig> configs;
    for (const MethodSpec& method : plan.methods) configs.push_back(method_config(method, length));
    std::vector<const PreparedSample*> samples;
    std::vector<AnswerJob> jobs;
    for (const PreparedSample& s : prepared.samples) {
      if (s.length != length) continue;
      samples.push_back(&s);
      jobs.push_back({&s.tokens, answer_token_budget(s.task)});
    }
    for (const std::vector<size_t>& group : prefill_groups(configs, plan.share_prefill)) {
      std::vector<attention::AttentionConfig> group_configs;
      for (size_t m : group) group_configs.push_back(configs[m]);
      engine::Engine engine = open(group_configs.front(), length, plan.batch);
      const std::vector<std::vector<BatchedAnswer>> answers =
          answer_in_batches(engine.transformer(), engine.tokenizer(), group_configs, jobs, plan.batch);
      for (size_t k = 0; k < group.size(); ++k) {
        const MethodSpec& method = plan.methods[group[k]];
        Cell& cell = cells[group[k]][l];
        cell.cost = cost_of(method.label, configs[group[k]], length, prepared.n_layers);
        for (size_t j = 0; j < samples.size(); ++j) cell.samples.push_back(outcome_of(*samples[j], method.label, answers[k][j]));
        runtime::Transformer& model = engine.transformer();
        model.truncate(0);
        model.set_sequence_method(model.default_sequence(), configs[group[k]]);
        for (const PerplexityText& text : prepared.texts) {
          if (text.length == length) cell.perplexity.push_back(score_text(engine, text, plan, method.label));
        }
        cell.done = true;
        progress.advance(static_cast<int64_t>(samples.size() + cell.perplexity.size()),
                         fmt::format("{} {}", method.label, length));
      }
      if (checkpoint) checkpoint(assemble(plan, cells));
    }
  }
  progress.finish();
  return assemble(plan, cells);
}

}  // namespace

EvalReport run_eval(const EvalPlan& plan, const FillerCorpus& corpus, const std::string& filler_dir,
                    const EngineOpener& open, const EvalCheckpoint& checkpoint) {
  if (plan.batch < 1) throw_input_error("--batch must be >= 1 (got {})", plan.batch);
  const int64_t longest = *std::max_element(plan.lengths.begin(), plan.lengths.end());
  Prepared prepared;
  {
    engine::Engine reference = open(attention::AttentionConfig{}, longest, 1);
    check_plan(plan, reference);
    prepared.n_layers = reference.model_config().n_layers;
    prepared.samples = prepare_samples(plan, corpus, reference.tokenizer());
    prepared.texts = prepare_perplexity(plan, filler_dir, reference);
  }
  // Fidelity is summed per method over its samples on the attention of one sequence.
  if (plan.fidelity || (plan.batch == 1 && !plan.share_prefill)) return run_sequential(plan, prepared, open, checkpoint);
  return run_batched(plan, prepared, open, checkpoint);
}

}  // namespace deltainfer::eval
