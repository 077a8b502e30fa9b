// Choosing the next token from one row of logits: greedy, or a draw after temperature, top-k and
// top-p (nucleus) filtering, applied in Hugging Face generate()'s order:
//   1. logits / temperature
//   2. top-k: keep the k largest (all of them when k is 0 or >= V)
//   3. top-p: of those, keep the most likely tokens, in order, while the probability of the ones
//      kept before a token is < top_p (so at least one, and the smallest set reaching top_p)
//   4. draw from the softmax of what is kept, with one uniform number u in [0, 1): the first
//      token, in order of decreasing probability (ties: lower id first), whose cumulative
//      probability exceeds u.
// Greedy (temperature 0) is the argmax, the lowest id on ties, as torch.argmax. top_k = 1 and a
// tiny top_p both reduce to the argmax whatever u is.
//
// Reproducibility: u for token `step` of sequence `stream` is a pure function of (seed, stream,
// step) (Philox, core/rng.h), so a seed gives the same tokens on every run, thread count and
// batch composition.
#pragma once

#include <cstdint>
#include <span>
#include <string>

namespace tailor::eval {

struct SamplingOptions {
  double temperature = 0.0;  // <= 0: greedy
  std::int64_t top_k = 0;    // 0: no top-k filter
  double top_p = 1.0;        // 1: no top-p filter
  std::uint64_t seed = 0;

  [[nodiscard]] bool greedy() const noexcept { return temperature <= 0.0; }
};

// Why the options are unusable (one line naming the option), or "" when they are fine.
[[nodiscard]] std::string sampling_problem(const SamplingOptions& options);

// The argmax of logits (lowest index on ties).
[[nodiscard]] std::int32_t greedy_token(std::span<const double> logits);

// The token that `options` choose from `logits` with uniform number u in [0, 1) (ignored when
// greedy).
[[nodiscard]] std::int32_t choose_token(std::span<const double> logits,
                                        const SamplingOptions& options, double u);

// Uniform in [0, 1) with 53 random bits for token `step` of sequence `stream` under `seed`.
[[nodiscard]] double sampling_uniform(std::uint64_t seed, std::uint64_t stream,
                                      std::uint64_t step) noexcept;

}  // namespace tailor::eval
