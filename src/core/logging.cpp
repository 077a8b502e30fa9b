#include "core/logging.h"

#include <mutex>

namespace tailor::log {
namespace {

LogConfig& config_storage() {
  static LogConfig config;
  return config;
}
std::mutex& write_mutex() {
  static std::mutex m;
  return m;
}

}  // namespace

void configure_logging(const LogConfig& config) { config_storage() = config; }
const LogConfig& logging_config() { return config_storage(); }

bool parse_level(std::string_view text, Level& out) {
  if (text == "debug") out = Level::kDebug;
  else if (text == "info") out = Level::kInfo;
  else if (text == "warn") out = Level::kWarn;
  else if (text == "error") out = Level::kError;
  else if (text == "off") out = Level::kOff;
  else return false;
  return true;
}

void write(Level level, std::string_view message) {
  const LogConfig& c = logging_config();
  if (level < c.level || c.sink == nullptr) return;
  const bool everyone = level >= Level::kWarn;
  if (!everyone && c.rank != 0) return;
  const char* tag = level == Level::kDebug ? "debug: "
                    : level == Level::kWarn ? "warning: "
                    : level == Level::kError ? "error: "
                                             : "";
  std::string line = c.world > 1 ? fmt::format("[rank {}] {}{}\n", c.rank, tag, message)
                                 : fmt::format("{}{}\n", tag, message);
  std::lock_guard lock(write_mutex());
  std::fwrite(line.data(), 1, line.size(), c.sink);
  std::fflush(c.sink);
}

}  // namespace tailor::log
