// KvCache: the keys and values of every token a batch of sequences has seen, per decoder layer,
// so that generation runs each new token through the model once (Transformer::extend).
//
//   keys(l), values(l): [B, S, Hkv, Dh] in the model's dtype, S = capacity()
//
// Row b holds its tokens at indices 0 .. length(b) - 1, and a token's index is its position: no
// left padding, so prompts of different lengths keep positions 0, 1, ... and attend to nothing
// but their own tokens. Entries at or past length(b) are scratch (the padding of a right-padded
// prefill writes there) and are never attended to; the next tokens of the row overwrite them.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "backend/ops.h"
#include "backend/tensor.h"
#include "model/model_spec.h"

namespace tailor::model {

class KvCache {
 public:
  // `batch` rows of up to `capacity` tokens for a model of `spec` whose rank holds `layout`.
  KvCache(const ModelSpec& spec, const TpLayout& layout, DType dtype, const backend::Ops& ops,
          std::int64_t batch,
          std::int64_t capacity);

  [[nodiscard]] std::int64_t batch() const noexcept { return batch_; }
  [[nodiscard]] std::int64_t capacity() const noexcept { return capacity_; }
  [[nodiscard]] int layers() const noexcept { return static_cast<int>(keys_.size()); }
  [[nodiscard]] std::int64_t length(std::int64_t row) const;
  [[nodiscard]] std::span<const std::int64_t> lengths() const noexcept { return lengths_; }

  [[nodiscard]] backend::Tensor keys(int layer) const;    // [B, S, Hkv, Dh]
  [[nodiscard]] backend::Tensor values(int layer) const;  // [B, S, Hkv, Dh]

  // Every row empty again (the memory is kept).
  void clear() noexcept;
  // Row b now holds `added[b]` more tokens (their keys and values already written).
  void advance(std::span<const std::int64_t> added);

 private:
  std::int64_t batch_ = 0;
  std::int64_t capacity_ = 0;
  std::vector<backend::Buffer> keys_, values_;
  std::vector<std::int64_t> lengths_;
};

}  // namespace tailor::model
