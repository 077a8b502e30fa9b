// Rank-aware logging to stderr.
//
// Info and debug lines are printed by rank 0 only (every rank runs the same code: N copies of
// the same line help nobody); warnings and errors are printed by every rank, prefixed with the
// rank when the job has more than one. The sink is set once at start-up (configure_logging) and is
// otherwise read-only, so logging needs no context object threaded through every call.
#pragma once

#include <cstdio>
#include <string>
#include <string_view>

#include <fmt/format.h>

namespace tailor::log {

enum class Level : int { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3, kOff = 4 };

struct LogConfig {
  int rank = 0;
  int world = 1;
  Level level = Level::kInfo;
  std::FILE* sink = stderr;
};

// Call once, before threads start. Later calls replace the configuration.
void configure_logging(const LogConfig& config);
[[nodiscard]] const LogConfig& logging_config();

// Parses "debug|info|warn|error|off"; returns false on anything else.
bool parse_level(std::string_view text, Level& out);

void write(Level level, std::string_view message);

template <typename... Args>
void debug(fmt::format_string<Args...> f, Args&&... args) {
  if (logging_config().level <= Level::kDebug) write(Level::kDebug, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void info(fmt::format_string<Args...> f, Args&&... args) {
  if (logging_config().level <= Level::kInfo) write(Level::kInfo, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void warn(fmt::format_string<Args...> f, Args&&... args) {
  if (logging_config().level <= Level::kWarn) write(Level::kWarn, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void error(fmt::format_string<Args...> f, Args&&... args) {
  if (logging_config().level <= Level::kError) write(Level::kError, fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace tailor::log
