// Dropout with counter-based masks (Ops::dropout).
//
// Element (n, c) keeps its value, scaled by 1 / (1 - p), when the 24-bit uniform number i =
// (row0 + n) * row_width + col0 + c of the Philox stream (seed, stream) is >= p. The mask is a
// pure function of the key and the element's global index, so rows can be split over threads in
// any way: the result is the same bits for every thread count (and every TP shard of a tensor
// draws the numbers of its slice of the full one). One Philox block gives the words of four
// consecutive indices; each row computes the blocks it spans once.
#include <cstdint>

#include "backend/cpu/cpu_common.h"
#include "backend/cpu/cpu_ops.h"
#include "core/rng.h"

namespace tailor::backend {

void CpuOps::dropout(const Tensor& src, const Tensor& dst, double p, const DropoutKey& key) {
  constexpr std::string_view kOp = "dropout";
  cpu::check_cpu(kOp, src);
  cpu::check_like(kOp, src, dst);
  TAILOR_ASSERT(p >= 0.0 && p < 1.0, "{}: p = {} outside [0, 1)", kOp, p);
  const std::int64_t rows = cpu::matrix_rows(src);
  const std::int64_t cols = src.shape.rank() == 0 ? 1 : src.cols();
  const std::int64_t width = key.row_width > 0 ? key.row_width : cols;
  TAILOR_ASSERT(key.col0 >= 0 && key.col0 + cols <= width && key.row0 >= 0,
                "{}: columns [{}, {}) of a {}-wide tensor", kOp, key.col0, key.col0 + cols, width);
  const CounterRng rng(key.seed, key.stream);
  // keep <=> (bits >> 8) * 2^-24 >= p <=> (bits >> 8) >= threshold.
  const double scaled = p * 16777216.0;
  auto threshold = static_cast<std::uint32_t>(scaled);
  if (static_cast<double>(threshold) < scaled) ++threshold;
  cpu::dispatch_float(kOp, src, [&](auto tag) {
    using T = decltype(tag);
    const T* s = src.ptr<T>();
    T* d = dst.ptr<T>();
    const T keep_scale = static_cast<T>(1.0 / (1.0 - p));
    pool_.parallel_for(rows, cpu::rows_per_block(cols), [&](std::int64_t r0, std::int64_t r1) {
      for (std::int64_t r = r0; r < r1; ++r) {
        const auto first = static_cast<std::uint64_t>((key.row0 + r) * width + key.col0);
        std::uint64_t block_of = ~std::uint64_t{0};
        Philox4x32 words{};
        for (std::int64_t c = 0; c < cols; ++c) {
          const std::uint64_t i = first + static_cast<std::uint64_t>(c);
          if ((i >> 2) != block_of) {
            block_of = i >> 2;
            words = rng.block(block_of);
          }
          const bool keep = (words[i & 3u] >> 8) >= threshold;
          const std::int64_t at = r * cols + c;
          d[at] = keep ? s[at] * keep_scale : T(0);
        }
      }
    });
  });
}

}  // namespace tailor::backend
