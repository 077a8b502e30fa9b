// The CUDA backend's contracts, emulated on the CPU: a testing hook (TAILOR_EMULATE_CUDA=1), not
// a backend users pick.
//
// Its buffers (Ops::alloc) come from this backend's own host allocation, labelled Device::kCuda,
// and Tensor::ptr() refuses them, so any host code that reads device memory other than through
// Ops::copy fails its
// assertion; every op asserts that its tensors are device tensors (a batch or a scratch buffer
// left on the host is caught). bf16 storage is emulated as the GPU kernels compute it: each op
// widens its bf16 operands to f32, runs the CPU reference in f32 and rounds the results to bf16
// once. So the whole trainer (mixed precision with f32 master weights, the device-side batch,
// host staging of collectives and checkpoints) runs and is tested on machines without a GPU.
#pragma once

#include <memory>
#include <string>

#include "backend/cpu/cpu_ops.h"
#include "backend/ops.h"

namespace tailor::backend {

class EmulatedDeviceOps final : public Ops {
 public:
  explicit EmulatedDeviceOps(int threads);
  ~EmulatedDeviceOps() override;
  EmulatedDeviceOps(const EmulatedDeviceOps&) = delete;
  EmulatedDeviceOps& operator=(const EmulatedDeviceOps&) = delete;

  [[nodiscard]] Device device() const noexcept override { return Device::kCuda; }
  [[nodiscard]] DeviceMemory* device_memory() const noexcept override;
  [[nodiscard]] std::string describe() const override;

  void copy(const Tensor& dst, const Tensor& src) override;
  void gemm(const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, const Tensor& c,
            double alpha, double beta) override;
  void fill(const Tensor& x, double value) override;
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
  class Memory;
  std::unique_ptr<Memory> memory_;
  CpuOps cpu_;
};

// True when TAILOR_EMULATE_CUDA=1 asks for the emulated device.
[[nodiscard]] bool cuda_emulation_requested() noexcept;

}  // namespace tailor::backend
