// Subcommands of the `tailor` executable. Each returns the process exit code and lets typed
// errors propagate to main(), which turns them into one line and the contract's exit code.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "comm/communicator.h"

namespace tailor::cli {

// tailor validate CONFIG [key=value ...]: config errors only, no work, nothing written.
int run_validate(const std::string& config_path, const std::vector<std::string>& overrides);

// tailor train CONFIG [key=value ...] on the ranks of `world`.
int run_train(const std::string& config_path, const std::vector<std::string>& overrides,
              std::unique_ptr<comm::Communicator> world);

}  // namespace tailor::cli
