// GEMM on the GPU through cuBLASLt, with CpuOps::gemm's row-major semantics:
//   c[M, N] = alpha * op(a) @ op(b) + beta * c,   op(x) = x^T when trans_x,
// a: [M, K] ([K, M] if trans_a), b: [K, N] ([N, K] if trans_b), all contiguous row-major.
//
// Types: all f32 (CUBLAS_COMPUTE_32F: true f32 products and sums, never TF32), or a and b bf16
// with c bf16 or f32 (f32 accumulation, f32 alpha and beta). Anything else is a caller bug.
//
// Determinism (ARCHITECTURE.md): one fixed algorithm per (shape, transposes, types, pointer
// alignment class) and one fixed workspace. The first call of a key asks
// cublasLtMatmulAlgoGetHeuristic for its best algorithm under the fixed workspace size; the
// algorithm, the operation descriptor and the matrix layouts are cached and reused by every later
// call of that key, so the same GEMM runs the same kernel with the same split every time.
//
// One CublasLtGemm per stream: it owns a cuBLASLt handle and the workspace, which every call
// enqueues on that stream. Not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <unordered_map>

#include <cuda_runtime.h>

namespace tailor::backend::cuda {

enum class GemmType { kF32, kBF16 };

struct GemmCall {
  const void* a = nullptr;  // [M, K] row-major ([K, M] if trans_a)
  GemmType a_type = GemmType::kF32;
  bool trans_a = false;
  const void* b = nullptr;  // [K, N] ([N, K] if trans_b)
  GemmType b_type = GemmType::kF32;
  bool trans_b = false;
  void* c = nullptr;  // [M, N] row-major
  GemmType c_type = GemmType::kF32;
  std::int64_t m = 0;
  std::int64_t n = 0;
  std::int64_t k = 0;
  float alpha = 1.0f;  // c = alpha * op(a) @ op(b) + beta * c
  float beta = 0.0f;   // beta == 0: c is not read (it may hold NaN)
};

class CublasLtGemm {
 public:
  // Creates the handle and cudaMallocs the workspace (32 MiB: NVIDIA's recommendation for Hopper).
  explicit CublasLtGemm(cudaStream_t stream, std::size_t workspace_bytes = std::size_t{32} << 20);
  ~CublasLtGemm();
  CublasLtGemm(const CublasLtGemm&) = delete;
  CublasLtGemm& operator=(const CublasLtGemm&) = delete;
  CublasLtGemm(CublasLtGemm&&) = delete;
  CublasLtGemm& operator=(CublasLtGemm&&) = delete;

  // Enqueues the GEMM on the stream. M, N or K may be 0 (K == 0: c = beta * c, 0 when beta is 0).
  void run(const GemmCall& call);

  [[nodiscard]] cudaStream_t stream() const noexcept { return stream_; }
  [[nodiscard]] std::size_t workspace_bytes() const noexcept { return workspace_bytes_; }
  // Number of cached plans (distinct keys seen so far).
  [[nodiscard]] std::size_t plans() const noexcept { return plans_.size(); }
  // Plans that run on cublasGemmEx because cuBLASLt's heuristic found no algorithm for them (or
  // because of force_fallback): correct for any shape and alignment, slower.
  [[nodiscard]] std::size_t fallback_plans() const noexcept { return fallback_plans_; }
  // Testing: every new plan takes the fallback, as if the heuristic had found nothing.
  void force_fallback(bool on) noexcept { force_fallback_ = on; }

 private:
  // What fixes the algorithm: the problem and the pointers' alignment class (an algorithm chosen
  // for 16-byte aligned operands may not run on less aligned ones).
  struct Key {
    std::int64_t m, n, k;
    GemmType a_type, b_type, c_type;
    bool trans_a, trans_b;
    std::uint32_t align_a, align_b, align_c;  // min(16, alignment of the pointer) in bytes
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    std::size_t operator()(const Key& k) const noexcept;
  };
  struct Plan;  // descriptors, layouts and the chosen algorithm (gemm.cpp)

  const Plan& plan_for(const Key& key);

  cudaStream_t stream_;
  std::size_t workspace_bytes_;
  void* workspace_ = nullptr;
  void* handle_ = nullptr;  // cublasLtHandle_t, kept opaque so that this header needs no cuBLAS
  void* blas_ = nullptr;    // cublasHandle_t of the fallback, created on first use
  std::size_t fallback_plans_ = 0;
  bool force_fallback_ = false;
  std::unordered_map<Key, std::unique_ptr<Plan>, KeyHash> plans_;
};

}  // namespace tailor::backend::cuda
