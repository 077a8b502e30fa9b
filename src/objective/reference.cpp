// Reference log-probabilities for DPO and IPO (see reference.h).
#include "objective/reference.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <unistd.h>

#include <fmt/format.h>

#include "core/error.h"

namespace tailor::objective {
namespace {

// Sum of each row's token losses, negated: the row's log-probability.
std::vector<double> row_logps_of(std::span<const double> token_losses, std::int64_t rows,
                                 std::int64_t seq) {
  std::vector<double> out(static_cast<std::size_t>(rows), 0.0);
  for (std::int64_t r = 0; r < rows; ++r) {
    double s = 0.0;
    for (std::int64_t t = 0; t < seq; ++t)
      s += token_losses[static_cast<std::size_t>(r * seq + t)];
    out[static_cast<std::size_t>(r)] = -s;
  }
  return out;
}

class AdaptersOff final : public ReferenceSource {
 public:
  std::vector<double> row_logps(model::Transformer& policy, const model::Batch& batch) override {
    struct Off {  // the adapters come back on whatever happens
      model::Transformer& m;
      explicit Off(model::Transformer& x) : m(x) { m.set_adapters_enabled(false); }
      ~Off() { m.set_adapters_enabled(true); }
      Off(const Off&) = delete;
      Off& operator=(const Off&) = delete;
    } off(policy);
    return row_logps_of(policy.forward_token_losses(batch), batch.batch, batch.seq);
  }
  std::string describe() const override { return "the policy with its adapters disabled"; }
};

class FrozenModel final : public ReferenceSource {
 public:
  explicit FrozenModel(model::Transformer& m) : m_(m) {}
  std::vector<double> row_logps(model::Transformer&, const model::Batch& batch) override {
    return row_logps_of(m_.forward_token_losses(batch), batch.batch, batch.seq);
  }
  std::string describe() const override { return "a frozen copy of the starting model"; }

 private:
  model::Transformer& m_;
};

// The format's magic, then the entry count (u64), then (u64 key, f64 value) per entry, all
// little-endian, sorted by key.
constexpr char kMagic[16] = "tailor-ref-v1\n";

}  // namespace

std::unique_ptr<ReferenceSource> adapters_off_reference() { return std::make_unique<AdaptersOff>(); }

std::unique_ptr<ReferenceSource> model_reference(model::Transformer& frozen) {
  return std::make_unique<FrozenModel>(frozen);
}

std::uint64_t row_key(const model::Batch& batch, std::int64_t row) {
  // FNV-1a over the row's three int32 arrays, then a final avalanche (splitmix64's).
  std::uint64_t h = 0xcbf29ce484222325ULL;
  const auto mix = [&](const backend::Tensor& t) {
    const std::int32_t* p = t.ptr<std::int32_t>() + row * batch.seq;
    for (std::int64_t i = 0; i < batch.seq; ++i) {
      auto v = static_cast<std::uint32_t>(p[i]);
      for (int b = 0; b < 4; ++b, v >>= 8) {
        h ^= v & 0xffu;
        h *= 0x100000001b3ULL;
      }
    }
  };
  mix(batch.ids);
  mix(batch.targets);
  mix(batch.positions);
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ULL;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebULL;
  h ^= h >> 31;
  return h;
}

ReferenceTable::ReferenceTable(std::vector<std::pair<std::uint64_t, double>> entries)
    : entries_(std::move(entries)) {
  std::stable_sort(entries_.begin(), entries_.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  entries_.erase(std::unique(entries_.begin(), entries_.end(),
                             [](const auto& a, const auto& b) { return a.first == b.first; }),
                 entries_.end());
}

std::optional<double> ReferenceTable::find(std::uint64_t key) const {
  const auto it = std::lower_bound(entries_.begin(), entries_.end(), key,
                                   [](const auto& e, std::uint64_t k) { return e.first < k; });
  if (it == entries_.end() || it->first != key) return std::nullopt;
  return it->second;
}

std::vector<double> ReferenceTable::row_logps(model::Transformer&, const model::Batch& batch) {
  std::vector<double> out(static_cast<std::size_t>(batch.batch));
  for (std::int64_t r = 0; r < batch.batch; ++r) {
    const std::optional<double> v = find(row_key(batch, r));
    // Every row training or evaluation reads was in the pass that made the table (the key of
    // the table's file covers everything that decides the rows).
    TAILOR_ASSERT(v.has_value(), "the precomputed reference{} has no value for a row of this "
                  "batch", origin_.empty() ? "" : " " + origin_);
    out[static_cast<std::size_t>(r)] = *v;
  }
  return out;
}

std::string ReferenceTable::describe() const {
  return fmt::format("precomputed log-probabilities of the starting model ({} rows{})",
                     entries_.size(), origin_.empty() ? "" : ", " + origin_);
}

void ReferenceTable::merge(const ReferenceTable& other) {
  std::vector<std::pair<std::uint64_t, double>> all = entries_;
  all.insert(all.end(), other.entries_.begin(), other.entries_.end());
  const std::string origin = origin_;
  *this = ReferenceTable(std::move(all));  // stable: this table's values win
  origin_ = origin;
}

void ReferenceTable::save(const std::string& path) const {
  const std::string tmp = fmt::format("{}.tmp.{}", path, ::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    TAILOR_CHECK_USER(out.good(), tmp, "cannot write the reference log-probabilities");
    out.write(kMagic, sizeof kMagic);
    const auto n = static_cast<std::uint64_t>(entries_.size());
    out.write(reinterpret_cast<const char*>(&n), sizeof n);
    for (const auto& [k, v] : entries_) {
      out.write(reinterpret_cast<const char*>(&k), sizeof k);
      out.write(reinterpret_cast<const char*>(&v), sizeof v);
    }
    out.flush();
    if (!out.good()) {
      out.close();
      std::filesystem::remove(tmp);
      throw_user_error(tmp, "cannot write the reference log-probabilities (disk full?)");
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp);
    throw_user_error(path, "cannot rename the reference log-probabilities into place: {}",
                     ec.message());
  }
}

std::optional<ReferenceTable> ReferenceTable::load(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return std::nullopt;
  std::ifstream in(path, std::ios::binary);
  TAILOR_CHECK_USER(in.good(), path, "cannot read the reference log-probabilities");
  char magic[sizeof kMagic] = {};
  std::uint64_t n = 0;
  in.read(magic, sizeof magic);
  in.read(reinterpret_cast<char*>(&n), sizeof n);
  TAILOR_CHECK_USER(in.good() && std::memcmp(magic, kMagic, sizeof kMagic) == 0, path,
                    "not a file of reference log-probabilities (delete it: the next run "
                    "recomputes it)");
  const auto size = std::filesystem::file_size(path, ec);
  // (The count is compared by division: a huge count must not wrap n * 16 onto the file size.)
  TAILOR_CHECK_USER(!ec && size >= sizeof kMagic + 8 && (size - sizeof kMagic - 8) % 16 == 0 &&
                        n == (size - sizeof kMagic - 8) / 16,
                    path,
                    "truncated reference log-probabilities ({} bytes for {} rows; delete it: the "
                    "next run recomputes it)", size, n);
  std::vector<std::pair<std::uint64_t, double>> entries(static_cast<std::size_t>(n));
  for (auto& [k, v] : entries) {
    in.read(reinterpret_cast<char*>(&k), sizeof k);
    in.read(reinterpret_cast<char*>(&v), sizeof v);
  }
  TAILOR_CHECK_USER(in.good(), path, "cannot read the reference log-probabilities");
  ReferenceTable t(std::move(entries));
  TAILOR_CHECK_USER(t.size() == n, path, "reference log-probabilities with repeated rows");
  t.origin_ = path;
  return t;
}

ReferenceTable precompute_reference(
    ReferenceSource& source, model::Transformer& policy, const data::PackedSequences& pairs,
    comm::Communicator& dp, std::int64_t pairs_per_batch,
    const std::function<void(std::int64_t, std::int64_t)>& progress) {
  TAILOR_ASSERT(pairs.rows_per_item() == 2, "a reference pass over unpaired data");
  TAILOR_ASSERT(pairs_per_batch > 0, "a reference pass of {} pairs per batch", pairs_per_batch);
  const std::int64_t n = pairs.size(), t = pairs.seq_len();
  const auto row = static_cast<std::size_t>(t);
  // Every rank knows every row's key (the rows are cheap to fill); the values of this rank's
  // pairs are computed here and summed over the replicas.
  std::vector<std::uint64_t> keys(static_cast<std::size_t>(2 * n));
  backend::Buffer values(DType::kF64, Shape{std::max<std::int64_t>(2 * n, 1)});
  std::fill_n(values.ptr<double>(), values.tensor().numel(), 0.0);
  const Shape s{2 * pairs_per_batch * t};
  backend::Buffer ids(DType::kI32, s), targets(DType::kI32, s), positions(DType::kI32, s),
      docs(DType::kI32, s);
  const auto fill = [&](std::int64_t item, std::int64_t slot) {
    const std::size_t off = static_cast<std::size_t>(slot) * 2 * row;
    pairs.fill(item, {ids.ptr<std::int32_t>() + off, 2 * row},
               {targets.ptr<std::int32_t>() + off, 2 * row},
               {positions.ptr<std::int32_t>() + off, 2 * row},
               {docs.ptr<std::int32_t>() + off, 2 * row});
  };
  const auto batch_of = [&](std::int64_t k) {
    const Shape bs{2 * k * t};
    return model::Batch{2 * k, t, ids.tensor().flat_slice(0, bs.numel()),
                        targets.tensor().flat_slice(0, bs.numel()),
                        positions.tensor().flat_slice(0, bs.numel()),
                        docs.tensor().flat_slice(0, bs.numel())};
  };
  for (std::int64_t i = 0; i < n; ++i) {
    fill(i, 0);
    const model::Batch one = batch_of(1);
    keys[static_cast<std::size_t>(2 * i)] = row_key(one, 0);
    keys[static_cast<std::size_t>(2 * i + 1)] = row_key(one, 1);
  }
  // This rank's pairs: i = rank, rank + size, ...; every rank runs the same number of batches
  // (the TP group's forward is collective), the last ones possibly short or empty.
  const std::int64_t mine = n > dp.rank() ? (n - dp.rank() + dp.size() - 1) / dp.size() : 0;
  const std::int64_t most = (n + dp.size() - 1) / dp.size();
  std::int64_t done = 0;
  for (std::int64_t first = 0; first < most; first += pairs_per_batch) {
    const std::int64_t k = std::min(pairs_per_batch, std::max<std::int64_t>(mine - first, 0));
    if (k > 0) {
      for (std::int64_t j = 0; j < k; ++j) fill(dp.rank() + (first + j) * dp.size(), j);
      const std::vector<double> v = source.row_logps(policy, batch_of(k));
      for (std::int64_t j = 0; j < k; ++j) {
        const std::int64_t item = dp.rank() + (first + j) * dp.size();
        values.ptr<double>()[2 * item] = v[static_cast<std::size_t>(2 * j)];
        values.ptr<double>()[2 * item + 1] = v[static_cast<std::size_t>(2 * j + 1)];
      }
    }
    done = std::min(n, (first + pairs_per_batch) * dp.size());
    if (progress) progress(done, n);
  }
  dp.all_reduce(values.tensor(), comm::ReduceOp::kSum);
  std::vector<std::pair<std::uint64_t, double>> entries(keys.size());
  for (std::size_t i = 0; i < keys.size(); ++i) entries[i] = {keys[i], values.ptr<double>()[i]};
  return ReferenceTable(std::move(entries));
}

}  // namespace tailor::objective
