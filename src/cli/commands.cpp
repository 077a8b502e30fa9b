#include "cli/commands.h"

#include <cstdio>
#include <filesystem>

#include "config/config.h"
#include "core/logging.h"
#include "trainer/trainer.h"

namespace tailor::cli {

int run_validate(const std::string& config_path, const std::vector<std::string>& overrides) {
  const config::ExperimentConfig cfg = config::load_config(config_path, overrides);
  log::info("{}: valid", config_path);
  return 0;
}

int run_train(const std::string& config_path, const std::vector<std::string>& overrides,
              std::unique_ptr<comm::Communicator> world) {
  const config::ExperimentConfig cfg = config::load_config(config_path, overrides);
  log::Level level = log::Level::kInfo;
  if (log::parse_level(cfg.runtime.log_level, level)) {
    log::LogConfig lc = log::logging_config();
    lc.level = level;
    log::configure_logging(lc);
  }
  const bool writer = world == nullptr || world->rank() == 0;
  const trainer::TrainSummary summary = trainer::train(cfg, std::move(world));
  if (!writer) return 0;
  std::error_code ec;
  const auto abs = std::filesystem::absolute(summary.run_dir, ec);
  std::printf("run directory: %s\n", ec ? summary.run_dir.c_str() : abs.c_str());
  return 0;
}

}  // namespace tailor::cli
