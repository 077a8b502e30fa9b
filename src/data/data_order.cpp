#include "data/data_order.h"

#include <numeric>

#include "core/error.h"
#include "core/rng.h"

namespace tailor::data {

DataOrder::DataOrder(std::int64_t num_sequences, std::uint64_t seed)
    : num_sequences_(num_sequences), seed_(seed) {
  TAILOR_ASSERT(num_sequences > 0, "no sequences");
}

std::vector<std::int64_t> DataOrder::permutation(std::int64_t n, std::uint64_t seed,
                                                 std::int64_t epoch) {
  std::vector<std::int64_t> p(static_cast<std::size_t>(n));
  std::iota(p.begin(), p.end(), 0);
  // Stream: a fixed tag for "data order" mixed with the epoch.
  const CounterRng rng(seed, stream_id("data.order") ^ static_cast<std::uint64_t>(epoch));
  for (std::int64_t i = n - 1; i > 0; --i) {
    const auto j = static_cast<std::int64_t>(
        rng.below(static_cast<std::uint64_t>(i), static_cast<std::uint64_t>(i + 1)));
    std::swap(p[static_cast<std::size_t>(i)], p[static_cast<std::size_t>(j)]);
  }
  return p;
}

std::int64_t DataOrder::sequence_at(std::int64_t g) {
  TAILOR_ASSERT(g >= 0, "negative sequence index {}", g);
  const std::int64_t e = g / num_sequences_;
  if (e != cached_epoch_) {
    perm_ = permutation(num_sequences_, seed_, e);
    cached_epoch_ = e;
  }
  return perm_[static_cast<std::size_t>(g % num_sequences_)];
}

}  // namespace tailor::data
