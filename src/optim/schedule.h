// Learning-rate schedules: linear warmup, then constant, linear or cosine decay.
//
// For 0-based optimizer step s of S, warmup W, peak lr, floor lr_min = lr * min_lr_ratio:
//   s <  W: lr * (s + 1) / W                         (the first step already moves)
//   s >= W: constant: lr
//           linear:   lr_min + (lr - lr_min) * (1 - p)
//           cosine:   lr_min + (lr - lr_min) * (1 + cos(pi * p)) / 2
//   with p = (s - W) / max(1, S - 1 - W), so the last step runs at exactly lr_min.
#pragma once

#include <cstdint>

namespace tailor::optim {

enum class ScheduleType { kConstant, kLinear, kCosine };

struct ScheduleSpec {
  ScheduleType type = ScheduleType::kCosine;
  double lr = 1e-3;
  std::int64_t warmup_steps = 0;
  std::int64_t total_steps = 1;
  double min_lr_ratio = 0.0;
};

[[nodiscard]] double learning_rate(const ScheduleSpec& spec, std::int64_t step) noexcept;

}  // namespace tailor::optim
