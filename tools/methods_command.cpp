// `deltainfer methods`: the attention methods the registry knows (attention/method_registry.h),
// as the markdown table docs/METHODS.md carries.
#include <fmt/format.h>

#include "attention/method_registry.h"
#include "commands.h"

namespace deltainfer::cli {

Command register_methods(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand("methods", "List the attention methods (--prefill / --decode / eval --methods)");
  return {cmd, [] {
            fmt::print("{}", attention::methods_markdown_table());
            return 0;
          }};
}

}  // namespace deltainfer::cli
