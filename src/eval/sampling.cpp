#include "eval/sampling.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include <fmt/format.h>

#include "core/error.h"
#include "core/rng.h"

namespace tailor::eval {
namespace {

// Stream ids of sampling are offset from those of parameter initialisation and data order.
constexpr std::uint64_t kSamplingStreamBase = 0x5A4D504C45000000ULL;  // "SAMPLE"

// Candidate ids in the order they are drawn from: by decreasing logit, lower id first on ties;
// only the first `keep` of them are sorted (the rest of the vector is unspecified).
std::vector<std::int32_t> ranked_ids(std::span<const double> logits, std::int64_t keep) {
  std::vector<std::int32_t> ids(logits.size());
  std::iota(ids.begin(), ids.end(), 0);
  const auto before = [&](std::int32_t a, std::int32_t b) {
    const double la = logits[static_cast<std::size_t>(a)];
    const double lb = logits[static_cast<std::size_t>(b)];
    return la > lb || (la == lb && a < b);
  };
  const auto mid = ids.begin() + keep;
  std::partial_sort(ids.begin(), mid, ids.end(), before);
  ids.resize(static_cast<std::size_t>(keep));
  return ids;
}

}  // namespace

std::string sampling_problem(const SamplingOptions& o) {
  if (!std::isfinite(o.temperature) || o.temperature < 0.0)
    return fmt::format("--temperature: {} must be >= 0 (0: greedy)", o.temperature);
  if (o.top_k < 0) return fmt::format("--top-k: {} must be >= 0 (0: off)", o.top_k);
  if (!(o.top_p > 0.0 && o.top_p <= 1.0))
    return fmt::format("--top-p: {} must be in (0, 1] (1: off)", o.top_p);
  return "";
}

std::int32_t greedy_token(std::span<const double> logits) {
  TAILOR_ASSERT(!logits.empty(), "greedy_token: no logits");
  // std::max_element returns the first of equal maxima: the lowest id, as torch.argmax.
  return static_cast<std::int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

std::int32_t choose_token(std::span<const double> logits, const SamplingOptions& o, double u) {
  if (o.greedy()) return greedy_token(logits);
  const auto v = static_cast<std::int64_t>(logits.size());
  const std::int64_t k = o.top_k > 0 ? std::min(o.top_k, v) : v;
  const std::vector<std::int32_t> ids = ranked_ids(logits, k);
  // Softmax of logits / temperature over the top k, max-subtracted, in f64.
  const double inv_t = 1.0 / o.temperature;
  const double top = logits[static_cast<std::size_t>(ids.front())] * inv_t;
  std::vector<double> p(ids.size());
  double total = 0.0;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    p[i] = std::exp(logits[static_cast<std::size_t>(ids[i])] * inv_t - top);
    total += p[i];
  }
  // Top-p: keep tokens while the probability before them is < top_p.
  std::size_t kept = ids.size();
  if (o.top_p < 1.0) {
    double before = 0.0;
    for (std::size_t i = 0; i < ids.size(); ++i) {
      if (before >= o.top_p) {
        kept = i;
        break;
      }
      before += p[i] / total;
    }
  }
  double kept_total = 0.0;
  for (std::size_t i = 0; i < kept; ++i) kept_total += p[i];
  double cumulative = 0.0;
  const double target = u * kept_total;
  for (std::size_t i = 0; i < kept; ++i) {
    cumulative += p[i];
    if (target < cumulative) return ids[i];
  }
  return ids[kept - 1];  // u within rounding of 1
}

double sampling_uniform(std::uint64_t seed, std::uint64_t stream, std::uint64_t step) noexcept {
  const Philox4x32 w = CounterRng(seed, kSamplingStreamBase + stream).block(step);
  const std::uint64_t bits = (std::uint64_t{w[0]} << 21) | (std::uint64_t{w[1]} >> 11);  // 53
  return static_cast<double>(bits) * 0x1.0p-53;
}

}  // namespace tailor::eval
