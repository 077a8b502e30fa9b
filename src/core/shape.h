// Tensor shapes: up to kMaxRank dimensions, row-major, value type.
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "core/error.h"

namespace tailor {

class Shape {
 public:
  static constexpr int kMaxRank = 6;

  Shape() = default;
  Shape(std::initializer_list<std::int64_t> dims) {
    TAILOR_ASSERT(dims.size() <= kMaxRank, "rank {} > {}", dims.size(), kMaxRank);
    for (std::int64_t d : dims) {
      TAILOR_ASSERT(d >= 0, "negative dimension {}", d);
      dims_[static_cast<std::size_t>(rank_++)] = d;
    }
  }

  // From a dimension list of any length <= kMaxRank (e.g. read from a file).
  template <typename Range>
  [[nodiscard]] static Shape of(const Range& dims) {
    Shape s;
    for (auto d : dims) {
      TAILOR_ASSERT(s.rank_ < kMaxRank, "rank > {}", kMaxRank);
      TAILOR_ASSERT(d >= 0, "negative dimension {}", d);
      s.dims_[static_cast<std::size_t>(s.rank_++)] = static_cast<std::int64_t>(d);
    }
    return s;
  }
  [[nodiscard]] std::vector<std::int64_t> dims() const {
    return {dims_.begin(), dims_.begin() + rank_};
  }

  [[nodiscard]] int rank() const noexcept { return rank_; }
  [[nodiscard]] std::int64_t operator[](int i) const {
    TAILOR_ASSERT(i >= -rank_ && i < rank_, "dim {} out of range for rank {}", i, rank_);
    return dims_[static_cast<std::size_t>(i < 0 ? i + rank_ : i)];
  }
  [[nodiscard]] std::int64_t numel() const noexcept {
    std::int64_t n = 1;
    for (int i = 0; i < rank_; ++i) n *= dims_[static_cast<std::size_t>(i)];
    return n;
  }
  // Product of all dimensions but the last: the "rows" of a row-major matrix view.
  [[nodiscard]] std::int64_t rows() const noexcept {
    std::int64_t n = 1;
    for (int i = 0; i + 1 < rank_; ++i) n *= dims_[static_cast<std::size_t>(i)];
    return n;
  }
  [[nodiscard]] std::int64_t cols() const noexcept { return rank_ == 0 ? 1 : dims_[static_cast<std::size_t>(rank_ - 1)]; }

  bool operator==(const Shape& o) const noexcept {
    if (rank_ != o.rank_) return false;
    for (int i = 0; i < rank_; ++i)
      if (dims_[static_cast<std::size_t>(i)] != o.dims_[static_cast<std::size_t>(i)]) return false;
    return true;
  }

  [[nodiscard]] std::string str() const {
    std::string s = "[";
    for (int i = 0; i < rank_; ++i) {
      if (i) s += ", ";
      s += std::to_string(dims_[static_cast<std::size_t>(i)]);
    }
    return s + "]";
  }

 private:
  std::array<std::int64_t, kMaxRank> dims_{};
  int rank_ = 0;
};

}  // namespace tailor
