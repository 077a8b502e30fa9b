#include "trainer/progress.h"

#include <optional>
#include <string_view>

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace tailor::trainer {

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "--";
  const auto s = static_cast<std::int64_t>(std::llround(seconds));
  if (s >= 3600) return fmt::format("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60);
  return fmt::format("{}:{:02}", s / 60, s % 60);
}

std::string format_count(double v) {
  if (v >= 1e6) return fmt::format("{:.2f}M", v / 1e6);
  if (v >= 1e3) return fmt::format("{:.1f}k", v / 1e3);
  return fmt::format("{:.0f}", v);
}

std::string progress_line(std::int64_t step, std::int64_t total, double loss, double lr,
                          double grad_norm, double tokens_per_s, double elapsed_s, double eta_s) {
  return fmt::format("step {}/{} | loss {:.4f} | lr {:.2e} | grad {:.3f} | {} tok/s | {} elapsed | ETA {}",
                     step, total, loss, lr, grad_norm, format_count(tokens_per_s),
                     format_duration(elapsed_s), format_duration(eta_s));
}

std::string prepare_progress_line(double fraction, std::int64_t records_read,
                                  std::int64_t records_tokenized, double mb_total,
                                  double elapsed_s) {
  const double f = std::isfinite(fraction) ? std::clamp(fraction, 0.0, 1.0) : 0.0;
  const double mb = f * mb_total;
  const double rate = elapsed_s > 0 ? mb / elapsed_s : 0.0;
  const double eta = f > 0 ? elapsed_s * (1 - f) / f : -1.0;
  return fmt::format(
      "data: {:.0f}% | {} records read, {} tokenized | {:.1f}/{:.1f} MB | {:.1f} MB/s | ETA {}",
      std::floor(100 * f), format_count(static_cast<double>(records_read)),
      format_count(static_cast<double>(records_tokenized)), mb, mb_total, rate,
      format_duration(eta));
}

std::string generate_progress_line(std::int64_t done, std::int64_t total, std::int64_t tokens,
                                   double elapsed_s) {
  const double rate = elapsed_s > 0 ? static_cast<double>(tokens) / elapsed_s : 0.0;
  const double eta = done > 0 ? elapsed_s * static_cast<double>(total - done) /
                                    static_cast<double>(done)
                              : -1.0;
  return fmt::format("generate: {}/{} prompts | {} tokens | {:.1f} tok/s | {} elapsed | ETA {}",
                     done, total, format_count(static_cast<double>(tokens)), rate,
                     format_duration(elapsed_s), format_duration(eta));
}

bool GenerateProgressPolicy::should_print(std::int64_t done, std::int64_t total) {
  if (total <= 0 || done >= total) return false;
  const std::int64_t tenth = 10 * done / total;
  if (tenth <= last_tenth_) return false;
  last_tenth_ = tenth;
  return true;
}

bool PrepareProgressPolicy::should_print(double fraction, double elapsed_s) {
  constexpr double kQuiet = 0.5;     // seconds before the first line
  constexpr double kRedraw = 0.25;   // seconds between two drawings on a terminal
  if (elapsed_s < kQuiet || fraction >= 1.0) return false;  // the summary line reports the end
  if (terminal_) {
    if (printed_ && elapsed_s - last_s_ < kRedraw) return false;
    last_s_ = elapsed_s;
    printed_ = true;
    return true;
  }
  const int tenth = static_cast<int>(std::floor(10 * fraction));
  if (tenth <= last_tenth_) return false;
  last_tenth_ = tenth;
  printed_ = true;
  return true;
}

std::string objective_progress(const std::vector<std::pair<std::string, double>>& metrics) {
  const auto find = [&](std::string_view name) -> std::optional<double> {
    for (const auto& [key, value] : metrics)
      if (key == name) return value;
    return std::nullopt;
  };
  const auto acc = find("rewards_accuracy"), margin = find("rewards_margin");
  const auto chosen = find("logps_chosen"), rejected = find("logps_rejected");
  if (!acc || !margin || !chosen || !rejected) return "";
  return fmt::format(" | acc {:.3f} margin {:.4f} | logps {:.3f}/{:.3f}", *acc, *margin, *chosen,
                     *rejected);
}

}  // namespace tailor::trainer
