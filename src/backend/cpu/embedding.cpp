// Token embedding lookup and its gradient.
//
// The table may be a vocab-parallel shard holding rows [vocab_begin, vocab_begin + V): ids outside
// it give zero rows forward and add nothing backward.
// Forward copies rows table[ids[n] - vocab_begin] in row blocks. Backward scatters dout rows into dtable
// (+=) without atomics: work is split over fixed blocks of columns, and each block visits the
// tokens in index order, so every element of dtable receives its additions in the same order as
// a serial loop would, whatever the thread count.
#include <cstdint>
#include <cstring>

#include "backend/cpu/cpu_common.h"
#include "backend/cpu/cpu_ops.h"

namespace tailor::backend {
namespace {

constexpr std::int64_t kColumnBlock = 128;  // columns per task of the backward scatter

// Ids index the full vocabulary; whether one falls in this table is the caller's layout (the
// data pipeline guarantees ids < vocab_size), so only negative ids are a bug here.
void check_ids(std::string_view op, const Tensor& ids) {
  const std::int32_t* p = ids.ptr<std::int32_t>();
  for (std::int64_t i = 0; i < ids.numel(); ++i)
    TAILOR_ASSERT(p[i] >= 0, "{}: negative id {} at {}", op, p[i], i);
}

}  // namespace

void CpuOps::embedding_forward(const Tensor& table, const Tensor& ids, std::int64_t vocab_begin,
                               const Tensor& out) {
  constexpr std::string_view kOp = "embedding_forward";
  cpu::check_cpu(kOp, table);
  cpu::check_dtype(kOp, ids, DType::kI32);
  cpu::check_dtype(kOp, out, table.dtype);
  const std::int64_t vocab = table.rows();
  const std::int64_t d = table.cols();
  const std::int64_t n = ids.numel();
  TAILOR_ASSERT(out.numel() == n * d && out.cols() == d, "{}: out {} for {} ids of a {} table", kOp,
                out.shape.str(), n, table.shape.str());
  check_ids(kOp, ids);
  cpu::dispatch_float(kOp, table, [&](auto tag) {
    using T = decltype(tag);
    const T* pt = table.ptr<T>();
    const std::int32_t* pid = ids.ptr<std::int32_t>();
    T* po = out.ptr<T>();
    pool_.parallel_for(n, cpu::rows_per_block(d), [&](std::int64_t r0, std::int64_t r1) {
      for (std::int64_t r = r0; r < r1; ++r) {
        const std::int64_t row = static_cast<std::int64_t>(pid[r]) - vocab_begin;
        if (row >= 0 && row < vocab) {
          std::memcpy(po + r * d, pt + row * d, static_cast<std::size_t>(d) * sizeof(T));
        } else {
          std::memset(static_cast<void*>(po + r * d), 0, static_cast<std::size_t>(d) * sizeof(T));
        }
      }
    });
  });
}

void CpuOps::embedding_backward(const Tensor& dtable, const Tensor& ids, std::int64_t vocab_begin,
                                const Tensor& dout) {
  constexpr std::string_view kOp = "embedding_backward";
  cpu::check_cpu(kOp, dtable);
  cpu::check_dtype(kOp, ids, DType::kI32);
  cpu::check_dtype(kOp, dout, dtable.dtype);
  const std::int64_t vocab = dtable.rows();
  const std::int64_t d = dtable.cols();
  const std::int64_t n = ids.numel();
  TAILOR_ASSERT(dout.numel() == n * d && dout.cols() == d, "{}: dout {} for {} ids of a {} table",
                kOp, dout.shape.str(), n, dtable.shape.str());
  check_ids(kOp, ids);
  cpu::dispatch_float(kOp, dtable, [&](auto tag) {
    using T = decltype(tag);
    T* pt = dtable.ptr<T>();
    const std::int32_t* pid = ids.ptr<std::int32_t>();
    const T* pd = dout.ptr<T>();
    pool_.parallel_for(d, kColumnBlock, [&](std::int64_t c0, std::int64_t c1) {
      for (std::int64_t r = 0; r < n; ++r) {
        const std::int64_t row = static_cast<std::int64_t>(pid[r]) - vocab_begin;
        if (row < 0 || row >= vocab) continue;
        T* dst = pt + row * d;
        const T* src = pd + r * d;
        for (std::int64_t c = c0; c < c1; ++c) dst[c] += src[c];
      }
    });
  });
}

}  // namespace tailor::backend
