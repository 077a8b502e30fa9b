#include "trainer/progress.h"

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

}  // namespace tailor::trainer
