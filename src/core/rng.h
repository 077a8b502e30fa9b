// Counter-based random numbers (Philox4x32-10, Salmon et al., SC'11).
//
// A value is a pure function of (seed, stream, index): no hidden state advances, so the same
// element gets the same number whatever thread computes it, in whatever order, on any backend, and
// a tensor-parallel shard can draw exactly the numbers of its slice of the full tensor by using
// global element indices. Streams separate independent uses (one per parameter name, one per
// epoch of data shuffling, ...).
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

namespace tailor {

using Philox4x32 = std::array<std::uint32_t, 4>;

// One Philox4x32-10 block: 4 random 32-bit words for counter `ctr` under key `key`.
[[nodiscard]] Philox4x32 philox4x32(std::array<std::uint32_t, 4> ctr,
                                    std::array<std::uint32_t, 2> key) noexcept;

class CounterRng {
 public:
  CounterRng(std::uint64_t seed, std::uint64_t stream) noexcept : seed_(seed), stream_(stream) {}

  // Four words for block `block` of this stream.
  [[nodiscard]] Philox4x32 block(std::uint64_t block) const noexcept;
  // Uniform 32-bit word number `index` of this stream.
  [[nodiscard]] std::uint32_t bits(std::uint64_t index) const noexcept;
  // Uniform in [0, 1) with 24 random bits (exactly representable as float).
  [[nodiscard]] double uniform(std::uint64_t index) const noexcept;
  // Standard normal for `index` (Box–Muller on the two word pairs of block `index`).
  [[nodiscard]] double normal(std::uint64_t index) const noexcept;
  // Uniform integer in [0, n) without modulo bias (Lemire's multiply-shift on 64-bit draws).
  [[nodiscard]] std::uint64_t below(std::uint64_t index, std::uint64_t n) const noexcept;

  [[nodiscard]] std::uint64_t seed() const noexcept { return seed_; }
  [[nodiscard]] std::uint64_t stream() const noexcept { return stream_; }

 private:
  std::uint64_t seed_;
  std::uint64_t stream_;
};

// Stable 64-bit hash of a name (FNV-1a), to derive a stream id from a parameter name.
[[nodiscard]] std::uint64_t stream_id(std::string_view name) noexcept;

}  // namespace tailor
