// The CPU backend: the reference implementation of Ops, in f32 and f64.
//
// GEMM goes to OpenBLAS with its thread count pinned at construction; everything else runs on a
// ThreadPool with fixed-size blocks, so results are bit-identical for any thread count.
#pragma once

#include <memory>
#include <string>

#include "backend/ops.h"
#include "core/parallel.h"

namespace tailor::backend {

class CpuOps final : public Ops {
 public:
  // threads <= 0: all hardware threads. Pins OpenBLAS to the same count.
  explicit CpuOps(int threads);
  ~CpuOps() override;

  [[nodiscard]] Device device() const noexcept override { return Device::kCpu; }
  [[nodiscard]] std::string describe() const override;
  [[nodiscard]] int threads() const noexcept { return pool_.size(); }
  [[nodiscard]] ThreadPool& pool() noexcept { return pool_; }

  void gemm(const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, const Tensor& c,
            double alpha, double beta) override;
  void fill(const Tensor& x, double value) override;
  void copy(const Tensor& dst, const Tensor& src) override;
  void add(const Tensor& y, const Tensor& x, double alpha) override;
  void scale(const Tensor& x, double alpha) override;
  double sum_squares(const Tensor& x) override;
  void add_bias(const Tensor& y, const Tensor& bias) override;
  void bias_backward(const Tensor& dbias, const Tensor& dy) override;
  void scale_columns(const Tensor& y, const Tensor& s) override;
  void scale_columns_backward(const Tensor& ds, const Tensor& dy, const Tensor& x) override;
  void embedding_forward(const Tensor& table, const Tensor& ids, std::int64_t vocab_begin,
                         const Tensor& out) override;
  void embedding_backward(const Tensor& dtable, const Tensor& ids, std::int64_t vocab_begin,
                          const Tensor& dout) override;
  void rmsnorm_forward(const Tensor& x, const Tensor& w, double eps, const Tensor& y,
                       const Tensor& rstd) override;
  void rmsnorm_backward(const Tensor& dy, const Tensor& x, const Tensor& w, const Tensor& rstd,
                        const Tensor& dx, const Tensor& dw) override;
  void layernorm_forward(const Tensor& x, const Tensor& w, const Tensor& b, double eps,
                         const Tensor& y, const Tensor& mean, const Tensor& rstd) override;
  void layernorm_backward(const Tensor& dy, const Tensor& x, const Tensor& w, const Tensor& mean,
                          const Tensor& rstd, const Tensor& dx, const Tensor& dw,
                          const Tensor& db) override;
  void rope_forward(const Tensor& x, const Tensor& positions, const Tensor& inv_freq) override;
  void rope_backward(const Tensor& dx, const Tensor& positions, const Tensor& inv_freq) override;
  void attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& doc_ids,
                         double scale, std::int64_t window, const Tensor& out,
                         const Tensor& lse) override;
  void attention_backward(const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v,
                          const Tensor& out, const Tensor& lse, const Tensor& doc_ids,
                          double scale, std::int64_t window, const Tensor& dq, const Tensor& dk,
                          const Tensor& dv) override;
  void attention_cached(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& start,
                        double scale, std::int64_t window, const Tensor& out) override;
  void swiglu_forward(const Tensor& gate, const Tensor& up, const Tensor& out) override;
  void swiglu_backward(const Tensor& dout, const Tensor& gate, const Tensor& up,
                       const Tensor& dgate, const Tensor& dup) override;
  void geglu_forward(const Tensor& gate, const Tensor& up, const Tensor& out) override;
  void geglu_backward(const Tensor& dout, const Tensor& gate, const Tensor& up,
                      const Tensor& dgate, const Tensor& dup) override;
  void gelu_forward(const Tensor& x, const Tensor& out) override;
  void gelu_backward(const Tensor& dout, const Tensor& x, const Tensor& dx) override;
  void dropout(const Tensor& src, const Tensor& dst, double p, const DropoutKey& key) override;
  void cross_entropy(const Tensor& logits, const Tensor& targets, std::int64_t valid_vocab,
                     const Tensor& losses, const Tensor& dlogits, double dscale) override;
  void ce_local_max(const Tensor& logits, std::int64_t valid_cols, const Tensor& row_max) override;
  void ce_local_sums(const Tensor& logits, const Tensor& targets, std::int64_t vocab_begin,
                     std::int64_t valid_cols, const Tensor& row_max, const Tensor& stats) override;
  void ce_finish(const Tensor& logits, const Tensor& targets, std::int64_t vocab_begin,
                 std::int64_t valid_cols, const Tensor& row_max, const Tensor& stats,
                 const Tensor& losses, const Tensor& dlogits, double dscale) override;
  void adamw_update(const Tensor& param, const Tensor& grad, const Tensor& m, const Tensor& v,
                    const AdamWHyper& hyper) override;

 private:
  ThreadPool pool_;
};

// Name and threading model of the BLAS library linked in (e.g. "OpenBLAS 0.3.21 ... pthread").
[[nodiscard]] std::string blas_description();

}  // namespace tailor::backend
