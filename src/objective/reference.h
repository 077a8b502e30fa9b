// Where DPO's (and IPO's) reference log-probabilities come from (decision 37, and 53 for the
// precomputed table). The reference is the starting model; a row's reference value is the sum of
// the log-probabilities of its answer tokens (minus the sum of its token losses).
//
//   AdaptersOff   PEFT: the policy itself with its adapters disabled for one forward (no copy).
//   FrozenModel   full fine-tuning, `objective.reference: model`: a second, frozen model.
//   ReferenceTable  `objective.reference: precomputed` (the default of full fine-tuning): one
//                 pass of the starting model over every pair before the first step, kept as a
//                 table from a row's content to its value and cached next to the tokenized data,
//                 so a resumed or repeated run reads it instead of recomputing, and training holds
//                 one model instead of two and runs one forward per row less.
//
// A row is identified by its content (ids, targets and positions of its seq_len tokens): what the
// reference's value depends on. Two rows with the same content have the same value.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "comm/communicator.h"
#include "data/packing.h"
#include "model/transformer.h"

namespace tailor::objective {

class ReferenceSource {
 public:
  virtual ~ReferenceSource() = default;
  // The reference value of every row of the host batch `batch`. `policy`: the model being
  // trained (its forward is run last by the caller, before its backward).
  [[nodiscard]] virtual std::vector<double> row_logps(model::Transformer& policy,
                                                      const model::Batch& batch) = 0;
  [[nodiscard]] virtual std::string describe() const = 0;
};

// The policy with its adapters disabled.
[[nodiscard]] std::unique_ptr<ReferenceSource> adapters_off_reference();
// A frozen model (must outlive the source).
[[nodiscard]] std::unique_ptr<ReferenceSource> model_reference(model::Transformer& frozen);

// The identity of row `row` of host batch `batch`: a 64-bit hash of its ids, targets and
// positions.
[[nodiscard]] std::uint64_t row_key(const model::Batch& batch, std::int64_t row);

class ReferenceTable final : public ReferenceSource {
 public:
  ReferenceTable() = default;
  // From (key, value) entries in any order; duplicate keys keep the first value.
  explicit ReferenceTable(std::vector<std::pair<std::uint64_t, double>> entries);

  [[nodiscard]] std::vector<double> row_logps(model::Transformer& policy,
                                              const model::Batch& batch) override;
  [[nodiscard]] std::string describe() const override;
  [[nodiscard]] std::size_t size() const noexcept { return entries_.size(); }
  // The value of a row with identity `key`; nullopt when the table has none.
  [[nodiscard]] std::optional<double> find(std::uint64_t key) const;
  // Adds the entries of `other` whose keys this table lacks (the dev pairs beside the training
  // pairs).
  void merge(const ReferenceTable& other);

  // Writes the table to `path` (`path`.tmp.<pid> renamed into place: never half-written).
  void save(const std::string& path) const;
  // The table in `path`; nullopt when there is none; a file that is not a complete table of
  // this format is a UserError naming it.
  [[nodiscard]] static std::optional<ReferenceTable> load(const std::string& path);

 private:
  std::vector<std::pair<std::uint64_t, double>> entries_;  // sorted by key, keys unique
  std::string origin_;                                     // the file it came from, if any
};

// One pass of `source` over every pair of `pairs` (kPairs packing), `pairs_per_batch` pairs at a
// time; the data-parallel ranks of `dp` take every dp.size()-th pair and the values are summed
// over `dp`, so every rank returns the whole table. Collective over the model's TP group and
// `dp`. `progress(done, total)` is called after each batch on every rank.
[[nodiscard]] ReferenceTable precompute_reference(
    ReferenceSource& source, model::Transformer& policy, const data::PackedSequences& pairs,
    comm::Communicator& dp, std::int64_t pairs_per_batch,
    const std::function<void(std::int64_t, std::int64_t)>& progress = {});

}  // namespace tailor::objective
