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
#include <initializer_list>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <cuda_runtime.h>

#include "backend/attention_dims.h"
#include "backend/cuda/context.h"
#include "backend/ops.h"

namespace tailor::backend::cuda {

class CublasLtGemm;
class CudnnAttention;

// Which attention CudaOps runs (runtime.attention, docs/gpu.md "Attention: cuDNN or Tailor's
// kernels"). kAuto and kCudnn differ only at start-up, where the trainer refuses kCudnn when
// cuDNN cannot run the model's shape; per call both take cuDNN's fused attention whenever it
// supports the call and Tailor's kernels otherwise.
enum class AttentionPath { kAuto, kCudnn, kTailor };

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
  // CUDA events on the stream (TAILOR_PROFILE=1).
  [[nodiscard]] std::unique_ptr<EventTimer> make_event_timer() override;

  [[nodiscard]] CudaContext& context() noexcept { return *context_; }
  [[nodiscard]] cudaStream_t stream() const noexcept { return context_->stream(); }

  // ---- attention path ----------------------------------------------------------------------
  // attention_forward / attention_backward run cuDNN's fused attention (cudnn_attention.h) when
  // the path is not kTailor, this build has cuDNN, the storage is bf16, no document masks are
  // given (rows packing several documents) and cuDNN accepts the shape; Tailor's kernels
  // otherwise. The first fallback of each reason is logged once ("attention: tailor kernels for
  // ..."). Both paths save the same natural-log lse, so a backward may follow either forward.
  void set_attention_path(AttentionPath path) noexcept { attention_path_ = path; }
  [[nodiscard]] AttentionPath attention_path() const noexcept { return attention_path_; }
  // Empty when cuDNN's fused attention runs causal attention of geometry `d` (no documents) in
  // `dtype` storage here, forward and backward; otherwise why not ("this build has no cuDNN",
  // "f32 storage", a head_dim cuDNN refuses, cuDNN's own message). With `build_plans` (the
  // default) cuDNN is started and the plans are built and cached, so cuDNN's own refusal is
  // known; without, only this build's and the shape's rules are checked (no cuDNN start-up or
  // kernel compilation, which the first call then pays). A reason returned here is not logged
  // again by the per-call fallback.
  [[nodiscard]] std::string cudnn_attention_unsupported(const AttentionDims& d, DType dtype,
                                                        bool build_plans = true);
  // "cuDNN 9.19.0" (the library loaded), or empty in a build without cuDNN.
  [[nodiscard]] static std::string cudnn_version();
  // Whether the latest attention_forward / attention_backward ran cuDNN (for tests, benchmarks).
  [[nodiscard]] bool last_attention_was_cudnn() const noexcept { return last_attention_cudnn_; }

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
  // Host copy of a small i32 device tensor, for the TAILOR_CUDA_SYNC=1 argument checks.
  [[nodiscard]] std::vector<std::int32_t> download_i32(const Tensor& t);

  // cudnn_attention_unsupported without the bookkeeping.
  [[nodiscard]] std::string cudnn_reason(const AttentionDims& d, DType dtype, bool build_plans);
  // Empty when this call may run cuDNN; else the fallback's reason (and logs it once).
  [[nodiscard]] std::string attention_fallback(const AttentionDims& d, const Tensor& doc_ids,
                                               std::initializer_list<const Tensor*> tensors);

  std::unique_ptr<CudaContext> context_;
  std::unique_ptr<CublasLtGemm> gemm_;
  AttentionPath attention_path_ = AttentionPath::kAuto;
  bool last_attention_cudnn_ = false;
  std::set<std::string> reported_fallbacks_;
#ifdef TAILOR_HAVE_CUDNN
  CudnnAttention& sdpa();  // started by cudnn_reason, which every cuDNN call goes through first
  std::unique_ptr<CudnnAttention> sdpa_;
  std::string sdpa_error_;  // why cuDNN did not start (then it is not tried again)
#endif
};

}  // namespace tailor::backend::cuda
