#include "optim/schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace tailor::optim {

double learning_rate(const ScheduleSpec& s, std::int64_t step) noexcept {
  if (step < s.warmup_steps)
    return s.lr * static_cast<double>(step + 1) / static_cast<double>(s.warmup_steps);
  if (s.type == ScheduleType::kConstant) return s.lr;
  const double floor = s.lr * s.min_lr_ratio;
  const double span = static_cast<double>(std::max<std::int64_t>(1, s.total_steps - 1 - s.warmup_steps));
  const double p = std::clamp(static_cast<double>(step - s.warmup_steps) / span, 0.0, 1.0);
  if (s.type == ScheduleType::kLinear) return floor + (s.lr - floor) * (1.0 - p);
  return floor + (s.lr - floor) * 0.5 * (1.0 + std::cos(std::numbers::pi * p));
}

}  // namespace tailor::optim
