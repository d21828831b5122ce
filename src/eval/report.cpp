#include "eval/report.h"

#include <fmt/format.h>

#include <cmath>
#include <map>
#include <tuple>

namespace deltainfer::eval {
namespace {

using CellKey = std::tuple<std::string, int64_t, std::string>;  // task, length, method

std::map<CellKey, CellSummary> cells_of(const EvalReport& report) {
  struct Sums {
    double score = 0, prompt = 0, prefill_s = 0, decode_s = 0, generated = 0;
    int n = 0;
  };
  std::map<CellKey, Sums> sums;
  for (const SampleOutcome& s : report.samples) {
    Sums& c = sums[{s.task, s.length, s.method}];
    c.score += s.score;
    c.prompt += static_cast<double>(s.prompt_tokens);
    c.prefill_s += s.prefill_seconds;
    c.decode_s += s.decode_seconds;
    c.generated += static_cast<double>(s.generated_tokens);
    ++c.n;
  }
  std::map<CellKey, CellSummary> cells;
  for (const auto& [key, c] : sums) {
    CellSummary& out = cells[key];
    std::tie(out.task, out.length, out.method) = key;
    out.samples = c.n;
    out.accuracy = 100.0 * c.score / c.n;
    out.mean_prompt_tokens = c.prompt / c.n;
    out.prefill_tokens_per_second = c.prefill_s > 0 ? c.prompt / c.prefill_s : 0.0;
    out.decode_tokens_per_second = c.decode_s > 0 ? c.generated / c.decode_s : 0.0;
  }
  return cells;
}

const MethodAtLength* cost_of(const EvalReport& report, const std::string& method, int64_t length) {
  for (const MethodAtLength& m : report.costs) {
    if (m.method == method && m.length == length) return &m;
  }
  return nullptr;
}

std::string accuracy_table(const EvalReport& report, const std::map<CellKey, CellSummary>& cells) {
  std::string out = "Accuracy (%, RULER string_match_all; samples per cell in the JSON)\n\n";
  out += "| task | length |";
  for (const std::string& method : report.methods) out += " " + method + " |";
  out += "\n| --- | ---: |";
  for (size_t i = 0; i < report.methods.size(); ++i) out += " ---: |";
  out += "\n";
  auto row = [&](const std::string& task, int64_t length, const std::vector<std::string>& tasks) {
    std::string line = fmt::format("| {} | {} |", task, length);
    for (const std::string& method : report.methods) {
      double sum = 0;
      int found = 0;
      for (const std::string& t : tasks) {
        const auto it = cells.find({t, length, method});
        if (it == cells.end()) continue;
        sum += it->second.accuracy;
        ++found;
      }
      line += found == static_cast<int>(tasks.size()) ? fmt::format(" {:.1f} |", sum / found) : " – |";
    }
    return line + "\n";
  };
  for (const std::string& task : report.tasks) {
    for (int64_t length : report.lengths) out += row(task, length, {task});
  }
  if (report.tasks.size() > 1) {
    for (int64_t length : report.lengths) out += row("**mean**", length, report.tasks);
  }
  return out;
}

std::string cost_table(const EvalReport& report) {
  std::string out =
      "Cost (attended = share of dense causal attention pairs, from the configuration; tok/s = prompt tokens per "
      "prefill second and generated tokens per decode second, over all samples)\n\n";
  out += "| method | length | attended prefill | attended decode | prefill tok/s | decode tok/s |\n";
  out += "| --- | ---: | ---: | ---: | ---: | ---: |\n";
  for (const std::string& method : report.methods) {
    for (int64_t length : report.lengths) {
      double prompt = 0, prefill_s = 0, generated = 0, decode_s = 0;
      for (const SampleOutcome& s : report.samples) {
        if (s.length != length || s.method != method) continue;
        prompt += static_cast<double>(s.prompt_tokens);
        prefill_s += s.prefill_seconds;
        generated += static_cast<double>(s.generated_tokens);
        decode_s += s.decode_seconds;
      }
      const MethodAtLength* cost = cost_of(report, method, length);
      out += fmt::format("| {} | {} | {} | {} | {} | {} |\n", method, length,
                         cost ? fmt::format("{:.1f}%", 100 * cost->attended.prefill) : "–",
                         cost ? fmt::format("{:.1f}%", 100 * cost->attended.decode) : "–",
                         prefill_s > 0 ? fmt::format("{:.0f}", prompt / prefill_s) : "–",
                         decode_s > 0 ? fmt::format("{:.0f}", generated / decode_s) : "–");
    }
  }
  return out;
}

std::string perplexity_table(const EvalReport& report) {
  std::string out =
      "Perplexity (ppl: all tokens; decode: the teacher-forced tail run through the decode path; LongPPL: key tokens "
      "chosen once by the dense model, see src/eval/perplexity.h)\n\n";
  out += "| method | length | ppl | ppl (decode tail) | LongPPL | key tokens |\n";
  out += "| --- | ---: | ---: | ---: | ---: | ---: |\n";
  for (const std::string& method : report.methods) {
    for (int64_t length : report.lengths) {
      double log_ppl = 0, log_decode = 0, log_long = 0;
      int64_t keys = 0;
      int texts = 0;
      for (const PerplexityOutcome& p : report.perplexity) {
        if (p.method != method || p.length != length) continue;
        log_ppl += std::log(p.ppl);
        log_decode += std::log(p.ppl_decode);
        log_long += std::log(p.longppl);
        keys += p.key_tokens;
        ++texts;
      }
      if (texts == 0) continue;
      out += fmt::format("| {} | {} | {:.3f} | {:.3f} | {:.3f} | {} |\n", method, length, std::exp(log_ppl / texts),
                         std::exp(log_decode / texts), std::exp(log_long / texts), keys);
    }
  }
  return out;
}

}  // namespace

std::vector<CellSummary> summarize(const EvalReport& report) {
  std::vector<CellSummary> out;
  for (const auto& [key, cell] : cells_of(report)) out.push_back(cell);
  return out;
}

nlohmann::json to_json(const EvalReport& report) {
  nlohmann::json j;
  j["run"] = report.run;
  j["methods"] = report.methods;
  j["lengths"] = report.lengths;
  j["tasks"] = report.tasks;
  j["costs"] = nlohmann::json::array();
  for (const MethodAtLength& m : report.costs) {
    j["costs"].push_back({{"method", m.method}, {"length", m.length}, {"config", m.description},
                          {"attended_prefill", m.attended.prefill}, {"attended_decode", m.attended.decode},
                          {"budget_tokens", m.budget_tokens}});
  }
  j["cells"] = nlohmann::json::array();
  for (const CellSummary& c : summarize(report)) {
    j["cells"].push_back({{"task", c.task}, {"length", c.length}, {"method", c.method}, {"samples", c.samples},
                          {"accuracy", c.accuracy}, {"mean_prompt_tokens", c.mean_prompt_tokens},
                          {"prefill_tokens_per_second", c.prefill_tokens_per_second},
                          {"decode_tokens_per_second", c.decode_tokens_per_second}});
  }
  j["perplexity"] = nlohmann::json::array();
  for (const PerplexityOutcome& p : report.perplexity) {
    j["perplexity"].push_back({{"method", p.method}, {"length", p.length}, {"text", p.text}, {"ppl", p.ppl},
                               {"ppl_decode", p.ppl_decode}, {"longppl", p.longppl},
                               {"scored_tokens", p.scored_tokens}, {"key_tokens", p.key_tokens}});
  }
  j["fidelity"] = nlohmann::json::array();
  for (const MethodFidelity& f : report.fidelity) {
    j["fidelity"].push_back({{"method", f.method}, {"length", f.length}, {"layers", f.layers}});
  }
  j["samples"] = nlohmann::json::array();
  for (const SampleOutcome& s : report.samples) {
    j["samples"].push_back({{"task", s.task}, {"length", s.length}, {"method", s.method}, {"index", s.index},
                            {"seed", s.seed}, {"depth", s.depth}, {"prompt_tokens", s.prompt_tokens},
                            {"expected", s.expected}, {"answer", s.answer}, {"score", s.score},
                            {"prefill_seconds", s.prefill_seconds}, {"decode_seconds", s.decode_seconds},
                            {"generated_tokens", s.generated_tokens}});
  }
  return j;
}

std::string markdown_tables(const EvalReport& report) {
  const std::map<CellKey, CellSummary> cells = cells_of(report);
  std::string out;
  if (!report.samples.empty()) out += accuracy_table(report, cells) + "\n" + cost_table(report);
  if (!report.perplexity.empty()) out += (out.empty() ? "" : "\n") + perplexity_table(report);
  return out;
}

}  // namespace deltainfer::eval
