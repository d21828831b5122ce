#pragma once
// Each subcommand of the `deltainfer` CLI registers its flags and returns its action.
#include <CLI/CLI.hpp>

#include <functional>

namespace deltainfer::cli {

struct Command {
  CLI::App* subcommand;
  std::function<int()> run;  // returns the process exit code
};

Command register_generate(CLI::App& app);
Command register_inspect(CLI::App& app);
Command register_bench(CLI::App& app);
Command register_eval(CLI::App& app);
Command register_methods(CLI::App& app);

}  // namespace deltainfer::cli
