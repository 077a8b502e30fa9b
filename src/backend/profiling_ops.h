// ProfilingOps: a backend that times every op of the one it wraps (TAILOR_PROFILE=1), so a run
// shows where its time goes, op by op, beside the step-time model (benchmarks/step_model.h).
//
// Each op is bracketed by two timestamps in the order of the wrapped backend's work: CUDA events
// on its stream (Ops::make_event_timer; nothing waits, so the GPU's pipeline is undisturbed),
// or the host clock where ops run synchronously (the CPU, the emulated device). Times are read
// in report(), after a synchronize.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "backend/ops.h"

namespace tailor::backend {

struct OpTime {
  std::int64_t calls = 0;
  double seconds = 0;
};

class ProfilingOps final : public Ops {
 public:
  explicit ProfilingOps(Ops& inner);

  // Per backend op (its Ops member name): calls and time since the last clear(). Synchronizes.
  [[nodiscard]] std::map<std::string, OpTime> report();
  // Forgets the calls recorded so far (e.g. after warm-up steps).
  void clear();

  [[nodiscard]] Device device() const noexcept override { return inner_->device(); }
  [[nodiscard]] std::string describe() const override;
  [[nodiscard]] DeviceMemory* device_memory() const noexcept override {
    return inner_->device_memory();
  }
  void synchronize() override { inner_->synchronize(); }

  void gemm(const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, const Tensor& c,
            double alpha, double beta) override;
  void fill(const Tensor& x, double value) override;
  void copy(const Tensor& dst, const Tensor& src) override;
  void add(const Tensor& y, const Tensor& x, double alpha) override;
  void scale(const Tensor& x, double alpha) override;
  [[nodiscard]] double sum_squares(const Tensor& x) override;
  [[nodiscard]] double weighted_sum_squares(std::span<const Tensor> xs,
                                            std::span<const double> weights) override;
  void add_bias(const Tensor& y, const Tensor& bias) override;
  void bias_backward(const Tensor& dbias, const Tensor& dy) override;
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
                          const Tensor& out, const Tensor& lse, const Tensor& doc_ids, double scale,
                          std::int64_t window, const Tensor& dq, const Tensor& dk,
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
  void scale_columns(const Tensor& y, const Tensor& s) override;
  void scale_columns_backward(const Tensor& ds, const Tensor& dy, const Tensor& x) override;
  void adamw_update(const Tensor& param, const Tensor& grad, const Tensor& m, const Tensor& v,
                    const AdamWHyper& hyper) override;
  void adamw_update_master(const Tensor& master, const Tensor& grad, const Tensor& m,
                           const Tensor& v, const AdamWHyper& hyper,
                           const Tensor& weights) override;

 private:
  struct Mark {
    std::size_t event = 0;                       // with an event timer
    std::chrono::steady_clock::time_point host;  // without
  };
  Mark begin();
  void end(const char* kind, const Mark& m);

  Ops* inner_;
  std::unique_ptr<EventTimer> timer_;  // null: the host clock
  std::size_t next_event_ = 0;
  struct Pending {
    const char* kind;
    std::size_t from, to;
  };
  std::vector<Pending> pending_;  // event pairs not read yet
  std::map<std::string, OpTime> times_;
};

}  // namespace tailor::backend
