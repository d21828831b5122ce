#include "prefill_progress.h"

#include <fmt/format.h>

#include <map>
#include <memory>
#include <string>

#include "core/progress.h"

namespace deltainfer::cli {

void add_progress_option(CLI::App& command, ProgressMode& mode) {
  const std::map<std::string, ProgressMode> names{
      {"auto", ProgressMode::Auto}, {"on", ProgressMode::On}, {"off", ProgressMode::Off}};
  command.add_option("--progress", mode, "Prefill progress on stderr: auto (prompts of 8+ chunks), on, off")
      ->transform(CLI::CheckedTransformer(names, CLI::ignore_case))
      ->default_str("auto");
}

void show_prefill_progress(runtime::Transformer& model, ProgressMode mode) {
  if (mode == ProgressMode::Off) {
    model.set_prefill_progress({});
    return;
  }
  const int64_t min_tokens = mode == ProgressMode::On ? 0 : kAutoMinChunks * model.prefill_chunk();
  // One bar per prompt: made at its first chunk, finished at its last.
  auto bar = std::make_shared<std::unique_ptr<Progress>>();
  auto shown = std::make_shared<int64_t>(0);
  model.set_prefill_progress([bar, shown, min_tokens](int64_t done, int64_t total) {
    if (total < min_tokens) return;
    if (*bar == nullptr) {
      *bar = std::make_unique<Progress>("prefill", total, stderr, "tokens");
      *shown = 0;
    }
    (*bar)->advance(done - *shown, fmt::format("{} of {} tokens", done, total));
    *shown = done;
    if (done >= total) bar->reset();  // the destructor ends the bar's line
  });
}

}  // namespace deltainfer::cli
