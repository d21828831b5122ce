// deltainfer: long-context LLM inference with Δ-corrected sparse prefill and DELTA decode.
// Exit codes: 0 success, 1 internal/resource error, 2 bad input (flags, files, prompt).
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <cstdio>
#include <vector>

#include "commands.h"
#include "core/error.h"

int main(int argc, char** argv) {
  using namespace deltainfer;
  CLI::App app{"deltainfer: long-context LLM inference with sparse attention (Δ prefill, DELTA decode)"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "deltainfer 0.1.0");
  const std::vector<cli::Command> commands = {cli::register_generate(app), cli::register_inspect(app), cli::register_bench(app), cli::register_eval(app),
                                              cli::register_methods(app)};
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    fmt::print(stderr, "error: {}\nRun with --help for more information.\n", e.what());
    return 2;
  }
  try {
    for (const cli::Command& command : commands) {
      if (command.subcommand->parsed()) return command.run();
    }
    return 2;
  } catch (const InputError& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 2;
  } catch (const std::bad_alloc&) {
    fmt::print(stderr, "error: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 1;
  }
}
