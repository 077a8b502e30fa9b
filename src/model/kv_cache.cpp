#include "model/kv_cache.h"

#include <algorithm>

#include "core/error.h"

namespace tailor::model {

KvCache::KvCache(const ModelSpec& spec, const TpLayout& layout, DType dtype,
                 const backend::Ops& ops, std::int64_t batch, std::int64_t capacity)
    : batch_(batch), capacity_(capacity), lengths_(static_cast<std::size_t>(batch), 0) {
  TAILOR_ASSERT(batch > 0 && capacity > 0, "KV cache of {} rows x {} tokens", batch, capacity);
  const Shape shape{batch, capacity, layout.kv_heads, spec.head_dim};
  keys_.reserve(static_cast<std::size_t>(spec.num_layers));
  values_.reserve(static_cast<std::size_t>(spec.num_layers));
  for (std::int64_t l = 0; l < spec.num_layers; ++l) {
    keys_.push_back(ops.alloc(dtype, shape));
    values_.push_back(ops.alloc(dtype, shape));
  }
}

std::int64_t KvCache::length(std::int64_t row) const {
  TAILOR_ASSERT(row >= 0 && row < batch_, "row {} of a {}-row KV cache", row, batch_);
  return lengths_[static_cast<std::size_t>(row)];
}

backend::Tensor KvCache::keys(int layer) const {
  TAILOR_ASSERT(layer >= 0 && layer < layers(), "layer {} of {}", layer, layers());
  return keys_[static_cast<std::size_t>(layer)].tensor();
}

backend::Tensor KvCache::values(int layer) const {
  TAILOR_ASSERT(layer >= 0 && layer < layers(), "layer {} of {}", layer, layers());
  return values_[static_cast<std::size_t>(layer)].tensor();
}

void KvCache::clear() noexcept { std::fill(lengths_.begin(), lengths_.end(), 0); }

void KvCache::advance(std::span<const std::int64_t> added) {
  TAILOR_ASSERT(static_cast<std::int64_t>(added.size()) == batch_, "{} counts for {} rows",
                added.size(), batch_);
  for (std::size_t b = 0; b < added.size(); ++b) {
    TAILOR_ASSERT(added[b] >= 0 && lengths_[b] + added[b] <= capacity_,
                  "row {}: {} + {} tokens exceed the KV cache's {}", b, lengths_[b], added[b],
                  capacity_);
    lengths_[b] += added[b];
  }
}

}  // namespace tailor::model
