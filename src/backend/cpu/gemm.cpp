// GEMM through OpenBLAS (row-major cblas_sgemm / cblas_dgemm).
//
// c[M, N] = alpha * op(a) @ op(b) + beta * c. Operands are 2-D views (rows(), cols()) of
// contiguous row-major tensors.
//
// Threading: OpenBLAS runs single-threaded in each call, and a large GEMM is split into one slab
// of C per thread of Tailor's pool (rows of C, or columns when C is wider than tall, in multiples
// of 16). OpenBLAS's own thread pool busy-waits (sched_yield) between calls and took the cores
// from Tailor's non-GEMM ops: one pool of sleeping workers for everything made a training step of
// the 125M benchmark model ~13% faster. A slab boundary never splits the K loop, so each element
// of C is accumulated in the same order whatever the split; the thread count is pinned anyway.
#include <algorithm>
#include <cstdint>
#include <limits>
#include <type_traits>

#include <cblas.h>

#include "backend/cpu/cpu_common.h"
#include "backend/cpu/cpu_ops.h"

namespace tailor::backend {

void CpuOps::gemm(const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, const Tensor& c,
                  double alpha, double beta) {
  constexpr std::string_view kOp = "gemm";
  cpu::check_cpu(kOp, a);
  cpu::check_dtype(kOp, b, a.dtype);
  cpu::check_dtype(kOp, c, a.dtype);
  const std::int64_t a_rows = cpu::matrix_rows(a);
  const std::int64_t b_rows = cpu::matrix_rows(b);
  const std::int64_t m = trans_a ? a.cols() : a_rows;
  const std::int64_t k = trans_a ? a_rows : a.cols();
  const std::int64_t kb = trans_b ? b.cols() : b_rows;
  const std::int64_t n = trans_b ? b_rows : b.cols();
  TAILOR_ASSERT(k == kb && cpu::matrix_rows(c) == m && c.cols() == n,
                "gemm: op(a) {}{} @ op(b) {}{} -> c {}", a.shape.str(), trans_a ? "^T" : "",
                b.shape.str(), trans_b ? "^T" : "", c.shape.str());
  if (m == 0 || n == 0) return;
  if (k == 0) {  // no products: c = beta * c (beta == 0 clears, as BLAS does)
    if (beta == 0.0) {
      fill(c, 0.0);
    } else {
      scale(c, beta);
    }
    return;
  }
  constexpr auto kMaxDim = static_cast<std::int64_t>(std::numeric_limits<blasint>::max());
  TAILOR_ASSERT(
      m <= kMaxDim && n <= kMaxDim && k <= kMaxDim && a.cols() <= kMaxDim && b.cols() <= kMaxDim,
      "gemm: dimensions of {} {} {} exceed the BLAS integer", a.str(), b.str(), c.str());
  if (openblas_get_num_threads() != 1) openblas_set_num_threads(1);
  const auto ta = trans_a ? CblasTrans : CblasNoTrans;
  const auto tb = trans_b ? CblasTrans : CblasNoTrans;
  const std::int64_t lda = std::max<std::int64_t>(1, a.cols());
  const std::int64_t ldb = std::max<std::int64_t>(1, b.cols());
  const std::int64_t ldc = n;

  // Slabs: split the longer side of C into one part per thread (multiples of 16) when the GEMM
  // is large enough to pay for the fork.
  constexpr double kMinFlopsToSplit = 1 << 22;
  const bool split_rows = m >= n;
  const std::int64_t side = split_rows ? m : n;
  std::int64_t parts = pool_.size();
  if (2.0 * static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k) < kMinFlopsToSplit)
    parts = 1;
  std::int64_t slab = (side + parts - 1) / parts;
  slab = (slab + 15) / 16 * 16;
  parts = (side + slab - 1) / slab;

  cpu::dispatch_float(kOp, a, [&](auto tag) {
    using T = decltype(tag);
    const T* pa = a.ptr<T>();
    const T* pb = b.ptr<T>();
    T* pc = c.ptr<T>();
    auto run_slab = [&](std::int64_t begin, std::int64_t end) {
      const T* sa = pa;
      const T* sb = pb;
      T* sc = pc;
      std::int64_t sm = m, sn = n;
      if (split_rows) {  // rows [begin, end) of C = rows of op(a)
        sa = trans_a ? pa + begin : pa + begin * lda;
        sc = pc + begin * ldc;
        sm = end - begin;
      } else {           // columns [begin, end) of C = columns of op(b)
        sb = trans_b ? pb + begin * ldb : pb + begin;
        sc = pc + begin;
        sn = end - begin;
      }
      if constexpr (std::is_same_v<T, float>) {
        cblas_sgemm(CblasRowMajor, ta, tb, static_cast<blasint>(sm), static_cast<blasint>(sn),
                    static_cast<blasint>(k), static_cast<float>(alpha), sa,
                    static_cast<blasint>(lda), sb, static_cast<blasint>(ldb),
                    static_cast<float>(beta), sc, static_cast<blasint>(ldc));
      } else {
        cblas_dgemm(CblasRowMajor, ta, tb, static_cast<blasint>(sm), static_cast<blasint>(sn),
                    static_cast<blasint>(k), alpha, sa, static_cast<blasint>(lda), sb,
                    static_cast<blasint>(ldb), beta, sc, static_cast<blasint>(ldc));
      }
    };
    if (parts <= 1) {
      run_slab(0, side);
    } else {
      pool_.run(parts, [&](std::int64_t p) { run_slab(p * slab, std::min(side, (p + 1) * slab)); });
    }
  });
}

}  // namespace tailor::backend
