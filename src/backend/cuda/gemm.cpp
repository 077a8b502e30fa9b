// cuBLASLt GEMM with row-major semantics (see gemm.h).
//
// cuBLAS is column-major. A row-major [R, C] matrix with leading dimension C is, in the same
// memory, the column-major [C, R] matrix: its transpose. So the row-major c = op(a) @ op(b) is
// computed as the column-major c^T = op(b)^T @ op(a)^T, i.e. cuBLAS's "A" is our b and its "B"
// is our a, with the same transpose flags, and cuBLAS's (m, n, k) = our (N, M, K):
//   cuBLAS A = b's memory: [N, K] column-major (ld N) when !trans_b, [K, N] (ld K) when trans_b
//   cuBLAS B = a's memory: [K, M] column-major (ld K) when !trans_a, [M, K] (ld M) when trans_a
//   cuBLAS C = D = c's memory: [N, M] column-major (ld N)
// Each leading dimension is the column count of the operand's row-major view.
#include "backend/cuda/gemm.h"

#include <algorithm>
#include <cstdint>
#include <functional>
#include <limits>

#include <cublasLt.h>
#include <cublas_v2.h>

#include "core/error.h"
#include "core/logging.h"
#include "kernels/cuda_check.cuh"
#include "kernels/elementwise.cuh"

namespace tailor::backend::cuda {
namespace {

[[noreturn]] void cublaslt_failure(cublasStatus_t status, const char* stmt, const char* file,
                                   int line) {
  int device = -1;
  (void)cudaGetDevice(&device);
  throw_runtime_error("cuBLAS error {} ({}) in `{}` at {}:{}, device {}",
                      cublasLtGetStatusName(status), cublasLtGetStatusString(status), stmt, file,
                      line, device);
}

}  // namespace
}  // namespace tailor::backend::cuda

// Every cuBLASLt call goes through this: a failure is a tailor::RuntimeError naming the call and
// the status.
#define TAILOR_CUBLASLT_CHECK(stmt)                                                         \
  do {                                                                                      \
    const cublasStatus_t tailor_status_ = (stmt);                                           \
    if (tailor_status_ != CUBLAS_STATUS_SUCCESS)                                            \
      ::tailor::backend::cuda::cublaslt_failure(tailor_status_, #stmt, __FILE__, __LINE__); \
  } while (0)

namespace tailor::backend::cuda {
namespace {

const char* type_name(GemmType t) { return t == GemmType::kF32 ? "f32" : "bf16"; }

cudaDataType_t cuda_type(GemmType t) { return t == GemmType::kF32 ? CUDA_R_32F : CUDA_R_16BF; }

// The alignment class of a pointer: its largest power-of-two alignment, capped at 16 bytes.
std::uint32_t alignment_class(const void* p) {
  const auto addr = reinterpret_cast<std::uintptr_t>(p);
  std::uint32_t align = 16;
  while (align > 1 && addr % align != 0) align /= 2;
  return align;
}

cublasLtHandle_t lt(void* handle) { return static_cast<cublasLtHandle_t>(handle); }

// Owns a preference descriptor for the duration of one heuristic query.
struct Preference {
  cublasLtMatmulPreference_t desc = nullptr;
  Preference() { TAILOR_CUBLASLT_CHECK(cublasLtMatmulPreferenceCreate(&desc)); }
  ~Preference() { (void)cublasLtMatmulPreferenceDestroy(desc); }
  Preference(const Preference&) = delete;
  Preference& operator=(const Preference&) = delete;
  template <typename V>
  void set(cublasLtMatmulPreferenceAttributes_t attr, V value) {
    TAILOR_CUBLASLT_CHECK(cublasLtMatmulPreferenceSetAttribute(desc, attr, &value, sizeof(value)));
  }
};

}  // namespace

struct CublasLtGemm::Plan {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t lt_a = nullptr;  // our b
  cublasLtMatrixLayout_t lt_b = nullptr;  // our a
  cublasLtMatrixLayout_t lt_c = nullptr;  // our c (also D)
  cublasLtMatmulAlgo_t algo{};
  bool fallback = false;  // no cuBLASLt algorithm: cublasGemmEx runs it

  Plan() = default;
  Plan(const Plan&) = delete;
  Plan& operator=(const Plan&) = delete;
  ~Plan() {
    if (lt_c != nullptr) (void)cublasLtMatrixLayoutDestroy(lt_c);
    if (lt_b != nullptr) (void)cublasLtMatrixLayoutDestroy(lt_b);
    if (lt_a != nullptr) (void)cublasLtMatrixLayoutDestroy(lt_a);
    if (op != nullptr) (void)cublasLtMatmulDescDestroy(op);
  }
};

std::size_t CublasLtGemm::KeyHash::operator()(const Key& k) const noexcept {
  std::size_t h = 0;
  auto mix = [&h](std::uint64_t v) {
    h ^= std::hash<std::uint64_t>{}(v) + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
  };
  mix(static_cast<std::uint64_t>(k.m));
  mix(static_cast<std::uint64_t>(k.n));
  mix(static_cast<std::uint64_t>(k.k));
  mix((static_cast<std::uint64_t>(k.a_type) << 0) | (static_cast<std::uint64_t>(k.b_type) << 4) |
      (static_cast<std::uint64_t>(k.c_type) << 8) | (static_cast<std::uint64_t>(k.trans_a) << 12) |
      (static_cast<std::uint64_t>(k.trans_b) << 13) |
      (static_cast<std::uint64_t>(k.align_a) << 16) |
      (static_cast<std::uint64_t>(k.align_b) << 24) |
      (static_cast<std::uint64_t>(k.align_c) << 32));
  return h;
}

CublasLtGemm::CublasLtGemm(cudaStream_t stream, std::size_t workspace_bytes)
    : stream_(stream), workspace_bytes_(workspace_bytes) {
  if (workspace_bytes_ > 0) TAILOR_CUDA_CHECK(cudaMalloc(&workspace_, workspace_bytes_));
  cublasLtHandle_t handle = nullptr;
  const cublasStatus_t status = cublasLtCreate(&handle);
  if (status != CUBLAS_STATUS_SUCCESS) {
    if (workspace_ != nullptr) (void)cudaFree(workspace_);
    cublaslt_failure(status, "cublasLtCreate(&handle)", __FILE__, __LINE__);
  }
  handle_ = handle;
}

CublasLtGemm::~CublasLtGemm() {
  // GEMMs still queued may use the workspace: let them finish before it goes.
  (void)cudaStreamSynchronize(stream_);
  plans_.clear();
  if (handle_ != nullptr) (void)cublasLtDestroy(lt(handle_));
  if (blas_ != nullptr) (void)cublasDestroy(static_cast<cublasHandle_t>(blas_));
  if (workspace_ != nullptr) (void)cudaFree(workspace_);
}

const CublasLtGemm::Plan& CublasLtGemm::plan_for(const Key& key) {
  if (const auto it = plans_.find(key); it != plans_.end()) return *it->second;

  auto plan = std::make_unique<Plan>();
  TAILOR_CUBLASLT_CHECK(cublasLtMatmulDescCreate(&plan->op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const cublasOperation_t op_a = key.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;  // cuBLAS A = our b
  const cublasOperation_t op_b = key.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;  // cuBLAS B = our a
  TAILOR_CUBLASLT_CHECK(
      cublasLtMatmulDescSetAttribute(plan->op, CUBLASLT_MATMUL_DESC_TRANSA, &op_a, sizeof(op_a)));
  TAILOR_CUBLASLT_CHECK(
      cublasLtMatmulDescSetAttribute(plan->op, CUBLASLT_MATMUL_DESC_TRANSB, &op_b, sizeof(op_b)));

  // Stored (column-major) shapes; the leading dimension is the stored row count, i.e. the column
  // count of the row-major view.
  const auto u = [](std::int64_t v) { return static_cast<std::uint64_t>(v); };
  const std::int64_t a_rows = key.trans_b ? key.k : key.n;  // cuBLAS A (our b)
  const std::int64_t a_cols = key.trans_b ? key.n : key.k;
  const std::int64_t b_rows = key.trans_a ? key.m : key.k;  // cuBLAS B (our a)
  const std::int64_t b_cols = key.trans_a ? key.k : key.m;
  TAILOR_CUBLASLT_CHECK(
      cublasLtMatrixLayoutCreate(&plan->lt_a, cuda_type(key.b_type), u(a_rows), u(a_cols), a_rows));
  TAILOR_CUBLASLT_CHECK(
      cublasLtMatrixLayoutCreate(&plan->lt_b, cuda_type(key.a_type), u(b_rows), u(b_cols), b_rows));
  TAILOR_CUBLASLT_CHECK(
      cublasLtMatrixLayoutCreate(&plan->lt_c, cuda_type(key.c_type), u(key.n), u(key.m), key.n));

  Preference pref;
  pref.set(CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, static_cast<std::uint64_t>(workspace_bytes_));
  pref.set(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, key.align_b);
  pref.set(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, key.align_a);
  pref.set(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, key.align_c);
  pref.set(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, key.align_c);

  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  TAILOR_CUBLASLT_CHECK(cublasLtMatmulAlgoGetHeuristic(lt(handle_), plan->op, plan->lt_a,
                                                       plan->lt_b, plan->lt_c, plan->lt_c,
                                                       pref.desc, 1, &result, &found));
  if (force_fallback_ || found < 1 || result.state != CUBLAS_STATUS_SUCCESS) {
    // No algorithm for this shape and these alignments (unaligned operands, odd leading
    // dimensions): the classic cuBLAS GEMM takes any, more slowly. Deterministic all the same.
    plan->fallback = true;
    ++fallback_plans_;
    if (!force_fallback_)
      log::warn("cuBLASLt has no algorithm for gemm m={} n={} k={} a={}{} b={}{} c={} (workspace "
                "{} bytes, alignments {}/{}/{}); it runs on cublasGemmEx, more slowly",
                key.m, key.n, key.k, type_name(key.a_type), key.trans_a ? "^T" : "",
                type_name(key.b_type), key.trans_b ? "^T" : "", type_name(key.c_type),
                workspace_bytes_, key.align_a, key.align_b, key.align_c);
    if (blas_ == nullptr) {
      cublasHandle_t h = nullptr;
      TAILOR_CUBLASLT_CHECK(cublasCreate(&h));
      blas_ = h;
      TAILOR_CUBLASLT_CHECK(cublasSetStream(h, stream_));
      // No tensor-op reordering that depends on the workspace: one fixed result per call.
      TAILOR_CUBLASLT_CHECK(cublasSetWorkspace(h, nullptr, 0));
    }
  }
  plan->algo = result.algo;
  return *plans_.emplace(key, std::move(plan)).first->second;
}

void CublasLtGemm::run(const GemmCall& call) {
  const bool all_f32 = call.a_type == GemmType::kF32 && call.b_type == GemmType::kF32 &&
                       call.c_type == GemmType::kF32;
  const bool bf16_in = call.a_type == GemmType::kBF16 && call.b_type == GemmType::kBF16;
  TAILOR_ASSERT(all_f32 || bf16_in, "gemm: unsupported types a={} b={} c={}",
                type_name(call.a_type), type_name(call.b_type), type_name(call.c_type));
  TAILOR_ASSERT(call.m >= 0 && call.n >= 0 && call.k >= 0, "gemm: bad sizes m={} n={} k={}", call.m,
                call.n, call.k);
  if (call.m == 0 || call.n == 0) return;
  TAILOR_ASSERT(call.c != nullptr, "gemm: null c for a {}x{} result", call.m, call.n);
  const std::int64_t mn = call.m * call.n;
  if (call.k == 0) {  // no products: c = beta * c (beta == 0 clears, as BLAS does)
    if (call.beta == 1.0f) return;
    if (call.c_type == GemmType::kF32) {
      auto* c = static_cast<float*>(call.c);
      if (call.beta == 0.0f) {
        kernels::fill(c, mn, 0.0f, stream_);
      } else {
        kernels::scale(c, mn, call.beta, stream_);
      }
    } else {
      auto* c = static_cast<std::uint16_t*>(call.c);
      if (call.beta == 0.0f) {
        kernels::fill(c, mn, 0.0f, stream_);
      } else {
        kernels::scale(c, mn, call.beta, stream_);
      }
    }
    return;
  }
  TAILOR_ASSERT(call.a != nullptr && call.b != nullptr, "gemm: null operand");
  const Key key{call.m,
                call.n,
                call.k,
                call.a_type,
                call.b_type,
                call.c_type,
                call.trans_a,
                call.trans_b,
                alignment_class(call.a),
                alignment_class(call.b),
                alignment_class(call.c)};
  const Plan& plan = plan_for(key);
  const float alpha = call.alpha;
  const float beta = call.beta;
  if (plan.fallback) {
    // The same column-major view as the cuBLASLt plan: C^T (n x m) = op(b)^T op(a)^T.
    const cublasOperation_t op_a = call.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
    const cublasOperation_t op_b = call.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
    const std::int64_t lda = call.trans_b ? call.k : call.n;
    const std::int64_t ldb = call.trans_a ? call.m : call.k;
    const auto i32 = [](std::int64_t v) {
      TAILOR_ASSERT(v <= std::numeric_limits<int>::max(), "gemm fallback: dimension {} > 2^31", v);
      return static_cast<int>(v);
    };
    TAILOR_CUBLASLT_CHECK(cublasGemmEx(static_cast<cublasHandle_t>(blas_), op_a, op_b, i32(call.n),
                                       i32(call.m), i32(call.k), &alpha, call.b,
                                       cuda_type(call.b_type), i32(lda), call.a,
                                       cuda_type(call.a_type), i32(ldb), &beta, call.c,
                                       cuda_type(call.c_type), i32(call.n), CUBLAS_COMPUTE_32F,
                                       CUBLAS_GEMM_DEFAULT));
    return;
  }
  TAILOR_CUBLASLT_CHECK(cublasLtMatmul(lt(handle_), plan.op, &alpha, call.b, plan.lt_a, call.a,
                                       plan.lt_b, &beta, call.c, plan.lt_c, call.c, plan.lt_c,
                                       &plan.algo, workspace_, workspace_bytes_, stream_));
}

}  // namespace tailor::backend::cuda
