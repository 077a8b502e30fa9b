// GEMM through OpenBLAS (row-major cblas_sgemm / cblas_dgemm).
//
// c[M, N] = alpha * op(a) @ op(b) + beta * c. Operands are 2-D views (rows(), cols()) of
// contiguous row-major tensors. OpenBLAS's result depends on its thread count, so the count this
// CpuOps was built with is re-pinned before a call if another CpuOps changed it meanwhile.
#include <cblas.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <type_traits>

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
  TAILOR_ASSERT(m <= kMaxDim && n <= kMaxDim && k <= kMaxDim && a.cols() <= kMaxDim &&
                    b.cols() <= kMaxDim,
                "gemm: dimensions of {} {} {} exceed the BLAS integer", a.str(), b.str(), c.str());
  if (openblas_get_num_threads() != pool_.size()) openblas_set_num_threads(pool_.size());
  const auto ta = trans_a ? CblasTrans : CblasNoTrans;
  const auto tb = trans_b ? CblasTrans : CblasNoTrans;
  const auto lda = static_cast<blasint>(std::max<std::int64_t>(1, a.cols()));
  const auto ldb = static_cast<blasint>(std::max<std::int64_t>(1, b.cols()));
  const auto ldc = static_cast<blasint>(n);
  const auto bm = static_cast<blasint>(m);
  const auto bn = static_cast<blasint>(n);
  const auto bk = static_cast<blasint>(k);
  cpu::dispatch_float(kOp, a, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_same_v<T, float>) {
      cblas_sgemm(CblasRowMajor, ta, tb, bm, bn, bk, static_cast<float>(alpha), a.ptr<float>(),
                  lda, b.ptr<float>(), ldb, static_cast<float>(beta), c.ptr<float>(), ldc);
    } else {
      cblas_dgemm(CblasRowMajor, ta, tb, bm, bn, bk, alpha, a.ptr<double>(), lda,
                  b.ptr<double>(), ldb, beta, c.ptr<double>(), ldc);
    }
  });
}

}  // namespace tailor::backend
