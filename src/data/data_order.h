// The order in which packed sequences are consumed (ARCHITECTURE.md, data-order contract).
//
// The stream of sequences is indexed by a global sequence index g = 0, 1, 2, ...: epoch
// e = g / S, and g maps to sequence perm_e[g % S], where perm_e is a permutation of [0, S)
// drawn from (seed, e) alone. Global batch k is g in [kG, (k+1)G); micro-batch u of it is
// [kG + u*m, kG + (u+1)*m); data-parallel rank d of D takes micro-batches d, d+D, ...
// Nothing here depends on the parallel layout, and the cursor to resume from is one integer.
#pragma once

#include <cstdint>
#include <vector>

namespace tailor::data {

class DataOrder {
 public:
  DataOrder(std::int64_t num_sequences, std::uint64_t seed);

  // Sequence index for global sequence index g.
  [[nodiscard]] std::int64_t sequence_at(std::int64_t g);
  [[nodiscard]] std::int64_t epoch_of(std::int64_t g) const noexcept { return g / num_sequences_; }
  [[nodiscard]] std::int64_t size() const noexcept { return num_sequences_; }

  // The permutation of an epoch (Fisher-Yates over counter-based draws).
  [[nodiscard]] static std::vector<std::int64_t> permutation(std::int64_t n, std::uint64_t seed,
                                                             std::int64_t epoch);

 private:
  std::int64_t num_sequences_;
  std::uint64_t seed_;
  std::int64_t cached_epoch_ = -1;
  std::vector<std::int64_t> perm_;
};

}  // namespace tailor::data
