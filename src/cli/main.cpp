// The `tailor` executable: parses argv, dispatches to a subcommand, and maps errors to the exit
// codes of ARCHITECTURE.md: 0 success (and --help), 1 runtime failure, 2 bad input (config, data,
// checkpoint, CLI usage). Every error is printed as one line per problem on stderr; command-line
// parse errors are caught here and never use the parser's own exit codes.
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "core/error.h"
#include "core/logging.h"

namespace {

constexpr const char* kVersion = "0.1.0";

int report(const tailor::Error& e) {
  std::fprintf(stderr, "%s\n", e.what());
  return static_cast<int>(e.exit_code());
}

}  // namespace

int main(int argc, char** argv) {
  tailor::log::configure_logging({});
  CLI::App app{"Tailor: fine-tune large language models (full, LoRA, prompt tuning, adapters)",
               "tailor"};
  app.set_version_flag("--version", kVersion);
  app.require_subcommand(1);
  app.failure_message(CLI::FailureMessage::simple);

  std::string config_path;
  std::vector<std::string> overrides;

  CLI::App* validate = app.add_subcommand("validate", "check a config file; no work is done");
  validate->add_option("config", config_path, "experiment YAML")->required();
  validate->add_option("overrides", overrides, "key.path=value overrides");

  CLI::App* train = app.add_subcommand("train", "train as the config says");
  train->add_option("config", config_path, "experiment YAML")->required();
  train->add_option("overrides", overrides, "key.path=value overrides");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::string msg = e.what();
    while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
    for (char& c : msg)
      if (c == '\n') c = ' ';
    std::fprintf(stderr, "tailor: %s (see tailor --help)\n", msg.c_str());
    return static_cast<int>(tailor::ExitCode::kUserError);
  }

  try {
    if (validate->parsed()) return tailor::cli::run_validate(config_path, overrides);
    if (train->parsed()) return tailor::cli::run_train(config_path, overrides);
  } catch (const tailor::Error& e) {
    return report(e);
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "out of memory\n");
    return static_cast<int>(tailor::ExitCode::kRuntime);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "internal error: %s\n", e.what());
    return static_cast<int>(tailor::ExitCode::kRuntime);
  }
  return static_cast<int>(tailor::ExitCode::kUserError);
}
