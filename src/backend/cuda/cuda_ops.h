// The CUDA backend: backend::Ops on one GPU.
//
// Storage modes, chosen per call by the tensors' dtypes (ops.h, "Conventions"):
//  - f32: every floating-point tensor f32 (the tight tests' mode; GEMMs in true f32, never TF32).
//  - bf16: activations and weights bf16; the accumulators f32 (= accum_dtype(bf16)): norm and
//    softmax statistics, losses, parameter gradients (dw, db, dtable, dbias, the c of a
//    weight-gradient gemm, the y of add) and the optimizer's tensors (adamw_update is all-f32:
//    the optimizer passes the f32 master weights as `param`).
// f64 is not a device type (only copy moves f64 host data onto the device, converting it).
//
// Every op is queued on the context's stream and returns without waiting, except those whose
// result the host reads (sum_squares, copies to or from host memory), which wait for it. GEMMs go
// to cuBLASLt (one fixed algorithm per shape, backend/cuda/gemm.h); everything else to the custom
// kernels in kernels/ (docs/kernels.md), which are deterministic. Workspaces come from the
// context's grow-only scratch, so steady-state training allocates nothing per call.
//
// Arguments are checked as CpuOps checks them (device, dtypes, sizes: an InternalError naming the
// op). Values that live in device memory (ids, targets, cache positions) are checked on the host
// only in TAILOR_CUDA_SYNC=1 mode, which also synchronizes after every op (context.h).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <cuda_runtime.h>

#include "backend/cuda/context.h"
#include "backend/ops.h"

namespace tailor::backend::cuda {

class CublasLtGemm;

class CudaOps final : public Ops {
 public:
  // Creates the device context (stream, memory pool: this backend's device memory) and the
  // cuBLASLt GEMM on its stream.
  explicit CudaOps(int device);
  ~CudaOps() override;
  CudaOps(const CudaOps&) = delete;
  CudaOps& operator=(const CudaOps&) = delete;
  CudaOps(CudaOps&&) = delete;
  CudaOps& operator=(CudaOps&&) = delete;

  [[nodiscard]] Device device() const noexcept override { return Device::kCuda; }
  [[nodiscard]] DeviceMemory* device_memory() const noexcept override { return context_.get(); }
  // "cuda: <GPU> (device 0, sm_90, 79.1 GiB), CUDA runtime 13.0, driver 13.0; cuBLASLt 13.x".
  [[nodiscard]] std::string describe() const override;
  void synchronize() override;

  [[nodiscard]] CudaContext& context() noexcept { return *context_; }
  [[nodiscard]] cudaStream_t stream() const noexcept { return context_->stream(); }

  void gemm(const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, const Tensor& c,
            double alpha, double beta) override;
  void fill(const Tensor& x, double value) override;
  void copy(const Tensor& dst, const Tensor& src) override;
  void add(const Tensor& y, const Tensor& x, double alpha) override;
  void scale(const Tensor& x, double alpha) override;
  double sum_squares(const Tensor& x) override;
  // One kernel: the f32 master update writes the bf16 weights as it goes.
  void adamw_update_master(const Tensor& master, const Tensor& grad, const Tensor& m,
                           const Tensor& v, const AdamWHyper& hyper,
                           const Tensor& weights) override;
 private:
  // adamw_update with an optional bf16 weights copy written by the same kernel.
  void adamw_launch(const Tensor& param, const Tensor& grad, const Tensor& m, const Tensor& v,
                    const AdamWHyper& hyper, const Tensor& weights);

 public:
  // f32 tensors in groups of equal weight, one multi-tensor launch per group of up to
  // kernels::kSumSquaresTensorsPerLaunch, one copy to the host for all groups.
  double weighted_sum_squares(std::span<const Tensor> xs,
                              std::span<const double> weights) override;
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
  // Host copy of a small i32 device tensor, for the TAILOR_CUDA_SYNC=1 argument checks.
  [[nodiscard]] std::vector<std::int32_t> download_i32(const Tensor& t);

  std::unique_ptr<CudaContext> context_;
  std::unique_ptr<CublasLtGemm> gemm_;
};

}  // namespace tailor::backend::cuda
