// The progress line printed every `train.log_every` steps:
//   step 40/300 | loss 2.1834 | lr 2.94e-03 | grad 0.812 | 41.2k tok/s | 0:12 elapsed | ETA 1:18
#pragma once

#include <cstdint>
#include <string>

namespace tailor::trainer {

// "1:05", "12:00:03" for seconds; "--" when negative or not finite.
[[nodiscard]] std::string format_duration(double seconds);
// "950", "41.2k", "1.25M".
[[nodiscard]] std::string format_count(double value);

[[nodiscard]] std::string progress_line(std::int64_t step, std::int64_t total, double loss,
                                        double lr, double grad_norm, double tokens_per_s,
                                        double elapsed_s, double eta_s);

}  // namespace tailor::trainer
