// cuDNN fused attention through the backend graph API (cudnn_attention.h says which graphs).
// Every descriptor is owned by the Plan that uses it (cuDNN's plans refer to the graph's
// descriptors); a failure while a graph is built or finalized means "cuDNN refuses this case"
// and becomes the entry's reason, a failure while executing is a RuntimeError.
#include "backend/cuda/cudnn_attention.h"

#include <array>
#include <limits>
#include <utility>
#include <vector>

#include <cudnn_backend.h>
#include <cudnn_graph.h>
#include <fmt/format.h>

#include "core/error.h"

namespace tailor::backend::cuda {
namespace {

// A cuDNN call that failed while a graph or plan was being built: the case is refused.
struct Refused {
  std::string reason;
};

std::string last_error(cudnnStatus_t status) {
  std::array<char, 512> message{};
  cudnnGetLastErrorString(message.data(), message.size());
  std::string text = cudnnGetErrorString(status);
  if (message[0] != '\0') text += fmt::format(" ({})", message.data());
  return text;
}

void refuse_unless_ok(cudnnStatus_t status, const char* what) {
  if (status != CUDNN_STATUS_SUCCESS)
    throw Refused{fmt::format("{}: {}", what, last_error(status))};
}

void check_run(cudnnStatus_t status, const char* what) {
  if (status != CUDNN_STATUS_SUCCESS)
    throw_runtime_error("cuDNN attention: {} failed: {}", what, last_error(status));
}

// The ids of the tensors that the caller binds (virtual tensors take ids from kFirstVirtual up).
enum Uid : std::int64_t {
  kQ = 1,
  kK,
  kV,
  kO,
  kStats,
  kScale,
  kDO,
  kDQ,
  kDK,
  kDV,
  kSoftmaxSum,
  kNegInf,
  kOne,
  kWindow,
  kFirstVirtual = 100,
};

// Dims and strides of a 4-d tensor.
struct Dims {
  std::array<std::int64_t, 4> dim{}, stride{};
};

// [B, T, H, Dh] storage seen as [B, H, T, Dh].
Dims bshd(std::int64_t b, std::int64_t h, std::int64_t t, std::int64_t d) {
  return {{b, h, t, d}, {t * h * d, d, h * d, 1}};
}
// The same storage seen transposed as [B, H, Dh, T] (K^T, V^T).
Dims bshd_transposed(std::int64_t b, std::int64_t h, std::int64_t t, std::int64_t d) {
  return {{b, h, d, t}, {t * h * d, d, 1, h * d}};
}
Dims contiguous(std::int64_t b, std::int64_t h, std::int64_t r, std::int64_t c) {
  return {{b, h, r, c}, {h * r * c, r * c, c, 1}};
}
Dims scalar() { return {{1, 1, 1, 1}, {1, 1, 1, 1}}; }

}  // namespace

// A finalized execution plan and everything it refers to.
struct CudnnAttention::Plan {
  std::vector<cudnnBackendDescriptor_t> owned;  // destroyed in reverse order
  cudnnBackendDescriptor_t plan = nullptr;
  std::int64_t workspace = 0;          // cuDNN's own, bytes
  std::int64_t softmax_sum_bytes = 0;  // backward: the f32 [B, Hq, T] sum(dO * O), after it

  Plan() = default;
  Plan(const Plan&) = delete;
  Plan& operator=(const Plan&) = delete;
  ~Plan() {
    for (auto it = owned.rbegin(); it != owned.rend(); ++it)
      (void)cudnnBackendDestroyDescriptor(*it);
  }

  [[nodiscard]] std::size_t total_bytes() const {
    const auto aligned = (static_cast<std::size_t>(workspace) + 255) / 256 * 256;
    return aligned + static_cast<std::size_t>(softmax_sum_bytes);
  }
};

namespace {

// Builds one operation graph into a Plan: tensors, operations, then the engine and plan.
class GraphBuilder {
 public:
  GraphBuilder(cudnnHandle_t handle, CudnnAttention::Plan& plan) : handle_(handle), plan_(plan) {}

  cudnnBackendDescriptor_t make(cudnnBackendDescriptorType_t type) {
    cudnnBackendDescriptor_t d = nullptr;
    refuse_unless_ok(cudnnBackendCreateDescriptor(type, &d), "create descriptor");
    plan_.owned.push_back(d);
    return d;
  }

  template <typename T>
  static void set(cudnnBackendDescriptor_t d, cudnnBackendAttributeName_t name,
                  cudnnBackendAttributeType_t type, std::int64_t count, const T* values,
                  const char* what) {
    refuse_unless_ok(cudnnBackendSetAttribute(d, name, type, count, values), what);
  }
  static void set_desc(cudnnBackendDescriptor_t d, cudnnBackendAttributeName_t name,
                       cudnnBackendDescriptor_t value, const char* what) {
    set(d, name, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &value, what);
  }
  static void finalize(cudnnBackendDescriptor_t d, const char* what) {
    refuse_unless_ok(cudnnBackendFinalize(d), what);
  }

  // A tensor; uid < 0 takes the next virtual id.
  cudnnBackendDescriptor_t tensor(cudnnDataType_t type, const Dims& dims, bool is_virtual,
                                  std::int64_t uid = -1, bool by_value = false) {
    cudnnBackendDescriptor_t t = make(CUDNN_BACKEND_TENSOR_DESCRIPTOR);
    const std::int64_t id = uid >= 0 ? uid : next_virtual_++;
    const std::int64_t alignment = 16;
    set(t, CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &type, "tensor type");
    set(t, CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, 4, dims.dim.data(), "tensor dims");
    set(t, CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, 4, dims.stride.data(), "tensor strides");
    set(t, CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &id, "tensor id");
    set(t, CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1, &alignment, "tensor alignment");
    set(t, CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, 1, &is_virtual, "tensor virtual");
    if (by_value)
      set(t, CUDNN_ATTR_TENSOR_IS_BY_VALUE, CUDNN_TYPE_BOOLEAN, 1, &by_value, "by value");
    finalize(t, "tensor");
    return t;
  }
  cudnnBackendDescriptor_t virt(const Dims& dims, cudnnDataType_t type = CUDNN_DATA_FLOAT) {
    return tensor(type, dims, /*is_virtual=*/true);
  }

  // y = mode(x[, b[, t]]) computed in `prec`; axis for GEN_INDEX.
  void pointwise(cudnnPointwiseMode_t mode, cudnnDataType_t prec, cudnnBackendDescriptor_t x,
                 cudnnBackendDescriptor_t b, cudnnBackendDescriptor_t t, cudnnBackendDescriptor_t y,
                 std::int64_t axis = -1) {
    cudnnBackendDescriptor_t pw = make(CUDNN_BACKEND_POINTWISE_DESCRIPTOR);
    set(pw, CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, 1, &mode, "pointwise mode");
    set(pw, CUDNN_ATTR_POINTWISE_MATH_PREC, CUDNN_TYPE_DATA_TYPE, 1, &prec, "pointwise precision");
    if (axis >= 0) set(pw, CUDNN_ATTR_POINTWISE_AXIS, CUDNN_TYPE_INT64, 1, &axis, "pointwise axis");
    finalize(pw, "pointwise descriptor");
    cudnnBackendDescriptor_t op = make(CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR);
    set_desc(op, CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, pw, "pointwise op");
    set_desc(op, CUDNN_ATTR_OPERATION_POINTWISE_XDESC, x, "pointwise x");
    if (b != nullptr) set_desc(op, CUDNN_ATTR_OPERATION_POINTWISE_BDESC, b, "pointwise b");
    if (t != nullptr) set_desc(op, CUDNN_ATTR_OPERATION_POINTWISE_TDESC, t, "pointwise t");
    set_desc(op, CUDNN_ATTR_OPERATION_POINTWISE_YDESC, y, "pointwise y");
    const float one = 1.0f;
    set(op, CUDNN_ATTR_OPERATION_POINTWISE_ALPHA1, CUDNN_TYPE_FLOAT, 1, &one, "pointwise alpha1");
    set(op, CUDNN_ATTR_OPERATION_POINTWISE_ALPHA2, CUDNN_TYPE_FLOAT, 1, &one, "pointwise alpha2");
    finalize(op, "pointwise op");
    ops_.push_back(op);
  }
  cudnnBackendDescriptor_t pointwise_new(cudnnPointwiseMode_t mode, cudnnBackendDescriptor_t x,
                                         cudnnBackendDescriptor_t b, const Dims& dims,
                                         cudnnDataType_t out_type = CUDNN_DATA_FLOAT,
                                         cudnnDataType_t prec = CUDNN_DATA_FLOAT) {
    cudnnBackendDescriptor_t y = virt(dims, out_type);
    pointwise(mode, prec, x, b, nullptr, y);
    return y;
  }

  void reduction(cudnnReduceTensorOp_t op_kind, cudnnBackendDescriptor_t x,
                 cudnnBackendDescriptor_t y) {
    cudnnBackendDescriptor_t r = make(CUDNN_BACKEND_REDUCTION_DESCRIPTOR);
    const cudnnDataType_t prec = CUDNN_DATA_FLOAT;
    set(r, CUDNN_ATTR_REDUCTION_OPERATOR, CUDNN_TYPE_REDUCTION_OPERATOR_TYPE, 1, &op_kind,
        "reduction operator");
    set(r, CUDNN_ATTR_REDUCTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &prec, "reduction type");
    finalize(r, "reduction descriptor");
    cudnnBackendDescriptor_t op = make(CUDNN_BACKEND_OPERATION_REDUCTION_DESCRIPTOR);
    set_desc(op, CUDNN_ATTR_OPERATION_REDUCTION_DESC, r, "reduction op");
    set_desc(op, CUDNN_ATTR_OPERATION_REDUCTION_XDESC, x, "reduction x");
    set_desc(op, CUDNN_ATTR_OPERATION_REDUCTION_YDESC, y, "reduction y");
    finalize(op, "reduction op");
    ops_.push_back(op);
  }

  void matmul(cudnnBackendDescriptor_t a, cudnnBackendDescriptor_t b, cudnnBackendDescriptor_t c) {
    cudnnBackendDescriptor_t m = make(CUDNN_BACKEND_MATMUL_DESCRIPTOR);
    const cudnnDataType_t prec = CUDNN_DATA_FLOAT;
    set(m, CUDNN_ATTR_MATMUL_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &prec, "matmul type");
    finalize(m, "matmul descriptor");
    cudnnBackendDescriptor_t op = make(CUDNN_BACKEND_OPERATION_MATMUL_DESCRIPTOR);
    set_desc(op, CUDNN_ATTR_OPERATION_MATMUL_ADESC, a, "matmul a");
    set_desc(op, CUDNN_ATTR_OPERATION_MATMUL_BDESC, b, "matmul b");
    set_desc(op, CUDNN_ATTR_OPERATION_MATMUL_CDESC, c, "matmul c");
    set_desc(op, CUDNN_ATTR_OPERATION_MATMUL_DESC, m, "matmul op");
    finalize(op, "matmul op");
    ops_.push_back(op);
  }

  void reshape(cudnnBackendDescriptor_t x, cudnnBackendDescriptor_t y) {
    cudnnBackendDescriptor_t op = make(CUDNN_BACKEND_OPERATION_RESHAPE_DESCRIPTOR);
    set_desc(op, CUDNN_ATTR_OPERATION_RESHAPE_XDESC, x, "reshape x");
    set_desc(op, CUDNN_ATTR_OPERATION_RESHAPE_YDESC, y, "reshape y");
    finalize(op, "reshape op");
    ops_.push_back(op);
  }

  // The causal mask (and the left window when W > 0) applied to the scores s: [B, H, T, T].
  cudnnBackendDescriptor_t mask(cudnnBackendDescriptor_t s, const Dims& sd,
                                cudnnBackendDescriptor_t neg_inf, cudnnBackendDescriptor_t window) {
    // keep row >= col (top-left aligned causal diagonal)
    cudnnBackendDescriptor_t row = virt(sd, CUDNN_DATA_INT32);
    pointwise(CUDNN_POINTWISE_GEN_INDEX, CUDNN_DATA_FLOAT, s, nullptr, nullptr, row, 2);
    cudnnBackendDescriptor_t col = virt(sd, CUDNN_DATA_INT32);
    pointwise(CUDNN_POINTWISE_GEN_INDEX, CUDNN_DATA_FLOAT, s, nullptr, nullptr, col, 3);
    cudnnBackendDescriptor_t keep = virt(sd, CUDNN_DATA_BOOLEAN);
    pointwise(CUDNN_POINTWISE_CMP_GE, CUDNN_DATA_BOOLEAN, row, col, nullptr, keep);
    cudnnBackendDescriptor_t masked = virt(sd);
    pointwise(CUDNN_POINTWISE_BINARY_SELECT, CUDNN_DATA_FLOAT, s, neg_inf, keep, masked);
    if (window == nullptr) return masked;
    // keep col + W > row
    cudnnBackendDescriptor_t row2 = virt(sd, CUDNN_DATA_INT32);
    pointwise(CUDNN_POINTWISE_GEN_INDEX, CUDNN_DATA_FLOAT, masked, nullptr, nullptr, row2, 2);
    cudnnBackendDescriptor_t col2 = virt(sd, CUDNN_DATA_INT32);
    pointwise(CUDNN_POINTWISE_GEN_INDEX, CUDNN_DATA_FLOAT, masked, nullptr, nullptr, col2, 3);
    cudnnBackendDescriptor_t shifted = virt(sd);
    pointwise(CUDNN_POINTWISE_ADD, CUDNN_DATA_FLOAT, col2, window, nullptr, shifted);
    cudnnBackendDescriptor_t keep2 = virt(sd, CUDNN_DATA_BOOLEAN);
    pointwise(CUDNN_POINTWISE_CMP_GT, CUDNN_DATA_BOOLEAN, shifted, row2, nullptr, keep2);
    cudnnBackendDescriptor_t windowed = virt(sd);
    pointwise(CUDNN_POINTWISE_BINARY_SELECT, CUDNN_DATA_FLOAT, masked, neg_inf, keep2, windowed);
    return windowed;
  }

  // The operation graph, then the first engine configuration of cuDNN's heuristics (mode A, then
  // the fallback list) that is deterministic and finalizes into a plan.
  void finish() {
    cudnnBackendDescriptor_t graph = make(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR);
    set(graph, CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR,
        static_cast<std::int64_t>(ops_.size()), ops_.data(), "graph ops");
    set(graph, CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, 1, &handle_, "graph handle");
    finalize(graph, "operation graph");
    std::string last = "no engine configuration";
    for (cudnnBackendHeurMode_t mode : {CUDNN_HEUR_MODE_A, CUDNN_HEUR_MODE_FALLBACK}) {
      cudnnBackendDescriptor_t heur = make(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR);
      set_desc(heur, CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, graph, "heuristics graph");
      set(heur, CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &mode, "heuristics mode");
      if (cudnnBackendFinalize(heur) != CUDNN_STATUS_SUCCESS) continue;
      std::int64_t count = 0;
      if (cudnnBackendGetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                   CUDNN_TYPE_BACKEND_DESCRIPTOR, 0, &count,
                                   nullptr) != CUDNN_STATUS_SUCCESS ||
          count <= 0)
        continue;
      std::vector<cudnnBackendDescriptor_t> cfgs(static_cast<std::size_t>(count));
      for (auto& c : cfgs) c = make(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR);
      std::int64_t got = 0;
      refuse_unless_ok(
          cudnnBackendGetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                   CUDNN_TYPE_BACKEND_DESCRIPTOR, count, &got, cfgs.data()),
          "heuristics results");
      for (std::int64_t i = 0; i < got; ++i) {
        cudnnBackendDescriptor_t cfg = cfgs[static_cast<std::size_t>(i)];
        if (!deterministic(cfg)) {
          last = "only nondeterministic engines";
          continue;
        }
        cudnnBackendDescriptor_t p = make(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR);
        set(p, CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE, 1, &handle_, "plan handle");
        set_desc(p, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, cfg, "plan engine config");
        const cudnnStatus_t st = cudnnBackendFinalize(p);
        if (st != CUDNN_STATUS_SUCCESS) {
          last = last_error(st);
          continue;
        }
        std::int64_t ws = 0, n = 0;
        refuse_unless_ok(cudnnBackendGetAttribute(p, CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE,
                                                  CUDNN_TYPE_INT64, 1, &n, &ws),
                         "plan workspace size");
        plan_.plan = p;
        plan_.workspace = ws;
        return;
      }
    }
    throw Refused{fmt::format("no cuDNN engine accepts the attention graph ({})", last)};
  }

 private:
  // Whether the engine of `cfg` carries no NONDETERMINISTIC numerical note.
  bool deterministic(cudnnBackendDescriptor_t cfg) {
    cudnnBackendDescriptor_t engine = make(CUDNN_BACKEND_ENGINE_DESCRIPTOR);
    std::int64_t n = 0;
    if (cudnnBackendGetAttribute(cfg, CUDNN_ATTR_ENGINECFG_ENGINE, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1,
                                 &n, &engine) != CUDNN_STATUS_SUCCESS)
      return false;
    std::array<cudnnBackendNumericalNote_t, CUDNN_NUMERICAL_NOTE_TYPE_COUNT> notes{};
    std::int64_t count = 0;
    if (cudnnBackendGetAttribute(engine, CUDNN_ATTR_ENGINE_NUMERICAL_NOTE,
                                 CUDNN_TYPE_NUMERICAL_NOTE, static_cast<std::int64_t>(notes.size()),
                                 &count, notes.data()) != CUDNN_STATUS_SUCCESS)
      return false;
    for (std::int64_t i = 0; i < count; ++i)
      if (notes[static_cast<std::size_t>(i)] == CUDNN_NUMERICAL_NOTE_NONDETERMINISTIC) return false;
    return true;
  }

  cudnnHandle_t handle_;
  CudnnAttention::Plan& plan_;
  std::vector<cudnnBackendDescriptor_t> ops_;
  std::int64_t next_virtual_ = kFirstVirtual;
};

// The by-value scalars every graph binds: the scale, -inf for masked scores, 1, the window.
struct Scalars {
  cudnnBackendDescriptor_t scale = nullptr, neg_inf = nullptr, one = nullptr, window = nullptr;
};

Scalars scalars(GraphBuilder& g, const SdpaShape& s) {
  Scalars c;
  c.scale = g.tensor(CUDNN_DATA_FLOAT, scalar(), false, kScale, true);
  c.neg_inf = g.tensor(CUDNN_DATA_FLOAT, scalar(), false, kNegInf, true);
  c.one = g.tensor(CUDNN_DATA_FLOAT, scalar(), false, kOne, true);
  if (s.window > 0) c.window = g.tensor(CUDNN_DATA_FLOAT, scalar(), false, kWindow, true);
  return c;
}

std::unique_ptr<CudnnAttention::Plan> build_forward(cudnnHandle_t handle, const SdpaShape& s) {
  auto plan = std::make_unique<CudnnAttention::Plan>();
  GraphBuilder g(handle, *plan);
  const std::int64_t b = s.batch, t = s.seq, hq = s.heads, hk = s.kv_heads, d = s.head_dim;
  const Scalars c = scalars(g, s);
  auto q = g.tensor(CUDNN_DATA_BFLOAT16, bshd(b, hq, t, d), false, kQ);
  auto kt = g.tensor(CUDNN_DATA_BFLOAT16, bshd_transposed(b, hk, t, d), false, kK);
  auto v = g.tensor(CUDNN_DATA_BFLOAT16, bshd(b, hk, t, d), false, kV);
  auto o = g.tensor(CUDNN_DATA_BFLOAT16, bshd(b, hq, t, d), false, kO);
  const Dims row_stat = contiguous(b, hq, t, 1);
  auto stats = g.tensor(CUDNN_DATA_FLOAT, row_stat, false, kStats);
  const Dims sd = contiguous(b, hq, t, t);

  auto s1 = g.virt(sd);
  g.matmul(q, kt, s1);
  auto s2 = g.pointwise_new(CUDNN_POINTWISE_MUL, s1, c.scale, sd);
  auto s3 = g.mask(s2, sd, c.neg_inf, c.window);
  // softmax with its statistics
  auto mx = g.virt(row_stat);
  g.reduction(CUDNN_REDUCE_TENSOR_MAX, s3, mx);
  auto centered = g.pointwise_new(CUDNN_POINTWISE_SUB, s3, mx, sd);
  auto e = g.pointwise_new(CUDNN_POINTWISE_EXP, centered, nullptr, sd);
  auto z = g.virt(row_stat);
  g.reduction(CUDNN_REDUCE_TENSOR_ADD, e, z);
  auto logz = g.pointwise_new(CUDNN_POINTWISE_LOG, z, nullptr, row_stat);
  g.pointwise(CUDNN_POINTWISE_ADD, CUDNN_DATA_FLOAT, mx, logz, nullptr, stats);
  // P is read by the second matmul in the storage type (a rule of the fused engine).
  auto p = g.virt(sd, CUDNN_DATA_BFLOAT16);
  g.pointwise(CUDNN_POINTWISE_DIV, CUDNN_DATA_FLOAT, e, z, nullptr, p);
  g.matmul(p, v, o);
  g.finish();
  return plan;
}

std::unique_ptr<CudnnAttention::Plan> build_backward(cudnnHandle_t handle, const SdpaShape& s) {
  auto plan = std::make_unique<CudnnAttention::Plan>();
  GraphBuilder g(handle, *plan);
  const std::int64_t b = s.batch, t = s.seq, hq = s.heads, hk = s.kv_heads, d = s.head_dim;
  const bool grouped = hq != hk;
  const Scalars c = scalars(g, s);
  auto q = g.tensor(CUDNN_DATA_BFLOAT16, bshd(b, hq, t, d), false, kQ);
  auto kt = g.tensor(CUDNN_DATA_BFLOAT16, bshd_transposed(b, hk, t, d), false, kK);
  auto vt = g.tensor(CUDNN_DATA_BFLOAT16, bshd_transposed(b, hk, t, d), false, kV);
  auto o = g.tensor(CUDNN_DATA_BFLOAT16, bshd(b, hq, t, d), false, kO);
  auto dout = g.tensor(CUDNN_DATA_BFLOAT16, bshd(b, hq, t, d), false, kDO);
  auto dq = g.tensor(CUDNN_DATA_BFLOAT16, bshd(b, hq, t, d), false, kDQ);
  auto dk = g.tensor(CUDNN_DATA_BFLOAT16, bshd(b, hk, t, d), false, kDK);
  auto dv = g.tensor(CUDNN_DATA_BFLOAT16, bshd(b, hk, t, d), false, kDV);
  const Dims row_stat = contiguous(b, hq, t, 1);
  auto stats = g.tensor(CUDNN_DATA_FLOAT, row_stat, false, kStats);
  auto softmax_sum = g.tensor(CUDNN_DATA_FLOAT, row_stat, false, kSoftmaxSum);
  plan->softmax_sum_bytes = b * hq * t * static_cast<std::int64_t>(sizeof(float));
  const Dims sd = contiguous(b, hq, t, t);
  const Dims sd_t = {{b, hq, t, t}, {hq * t * t, t * t, 1, t}};  // the transpose, same storage

  // softmax_sum = sum over Dh of dO * O
  auto prod = g.pointwise_new(CUDNN_POINTWISE_MUL, dout, o, bshd(b, hq, t, d));
  auto rowsum = g.virt(row_stat);
  g.reduction(CUDNN_REDUCE_TENSOR_ADD, prod, rowsum);
  g.pointwise(CUDNN_POINTWISE_MUL, CUDNN_DATA_FLOAT, rowsum, c.one, nullptr, softmax_sum);

  // P = exp(mask(Q K^T * scale) - Stats)
  auto s1 = g.virt(sd);
  g.matmul(q, kt, s1);
  auto s2 = g.pointwise_new(CUDNN_POINTWISE_MUL, s1, c.scale, sd);
  auto s3 = g.mask(s2, sd, c.neg_inf, c.window);
  auto s4 = g.pointwise_new(CUDNN_POINTWISE_SUB, s3, stats, sd);
  auto p = g.pointwise_new(CUDNN_POINTWISE_EXP, s4, nullptr, sd);

  // dV = P^T dO (per query head, summed over the group)
  auto pt = g.virt(sd_t, CUDNN_DATA_BFLOAT16);
  g.reshape(p, pt);
  if (!grouped) {
    g.matmul(pt, dout, dv);
  } else {
    auto dv_full = g.virt(contiguous(b, hq, t, d), CUDNN_DATA_BFLOAT16);
    g.matmul(pt, dout, dv_full);
    g.reduction(CUDNN_REDUCE_TENSOR_ADD, dv_full, dv);
  }

  // dS = P * (dO V^T - softmax_sum) * scale
  auto dp = g.virt(sd);
  g.matmul(dout, vt, dp);
  auto dp2 = g.pointwise_new(CUDNN_POINTWISE_SUB, dp, softmax_sum, sd);
  auto dp3 = g.pointwise_new(CUDNN_POINTWISE_MUL, dp2, p, sd);
  auto ds = g.pointwise_new(CUDNN_POINTWISE_MUL, dp3, c.scale, sd);

  // dK = dS^T Q (per query head, summed over the group)
  auto dst = g.virt(sd_t, CUDNN_DATA_BFLOAT16);
  g.reshape(ds, dst);
  if (!grouped) {
    g.matmul(dst, q, dk);
  } else {
    auto dk_full = g.virt(contiguous(b, hq, t, d), CUDNN_DATA_BFLOAT16);
    g.matmul(dst, q, dk_full);
    g.reduction(CUDNN_REDUCE_TENSOR_ADD, dk_full, dk);
  }

  // dQ = dS K, written directly (the deterministic dP-workspace form: no f32 accumulator)
  auto k = g.virt(bshd(b, hk, t, d), CUDNN_DATA_BFLOAT16);
  g.reshape(kt, k);
  g.matmul(ds, k, dq);
  g.finish();
  return plan;
}

void execute(cudnnHandle_t handle, const CudnnAttention::Plan& plan, std::vector<std::int64_t> uids,
             std::vector<void*> ptrs, void* workspace) {
  cudnnBackendDescriptor_t pack = nullptr;
  check_run(cudnnBackendCreateDescriptor(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR, &pack),
            "variant pack");
  struct PackGuard {
    cudnnBackendDescriptor_t d;
    ~PackGuard() { (void)cudnnBackendDestroyDescriptor(d); }
  } guard{pack};
  check_run(cudnnBackendSetAttribute(pack, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64,
                                     static_cast<std::int64_t>(uids.size()), uids.data()),
            "variant pack ids");
  check_run(
      cudnnBackendSetAttribute(pack, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR,
                               static_cast<std::int64_t>(ptrs.size()), ptrs.data()),
      "variant pack pointers");
  check_run(cudnnBackendSetAttribute(pack, CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR,
                                     1, &workspace),
            "variant pack workspace");
  check_run(cudnnBackendFinalize(pack), "variant pack");
  check_run(cudnnBackendExecute(handle, plan.plan, pack), "execute");
}

// -inf for masked scores; cuDNN before 9.10 wants the lowest finite float instead.
float masked_value() {
  return cudnnGetVersion() < 91000 ? std::numeric_limits<float>::lowest()
                                   : -std::numeric_limits<float>::infinity();
}

}  // namespace

std::string sdpa_shape_rule(const SdpaShape& s, int compute_capability_major) {
  if (compute_capability_major < 8)
    return fmt::format("the GPU's compute capability {}.x is below 8.0", compute_capability_major);
  if (s.head_dim % 8 != 0 || s.head_dim > 256)
    return fmt::format("head_dim {} (cuDNN needs a multiple of 8, at most 256)", s.head_dim);
  if (s.batch <= 0 || s.seq <= 0 || s.heads <= 0 || s.kv_heads <= 0 || s.heads % s.kv_heads != 0)
    return "an empty or ungrouped shape";
  return {};
}

void CudnnAttention::HandleDeleter::operator()(void* h) const noexcept {
  if (h != nullptr) (void)cudnnDestroy(static_cast<cudnnHandle_t>(h));
}

CudnnAttention::CudnnAttention(cudaStream_t stream) : stream_(stream) {
  cudnnHandle_t h = nullptr;
  check_run(cudnnCreate(&h), "cudnnCreate");
  handle_.reset(h);
  check_run(cudnnSetStream(h, stream), "cudnnSetStream");
}

CudnnAttention::~CudnnAttention() = default;

std::string CudnnAttention::version() {
  const std::size_t v = cudnnGetVersion();
  return fmt::format("cuDNN {}.{}.{}", v / 10000, v / 100 % 100, v % 100);
}

CudnnAttention::Entry& CudnnAttention::entry(const SdpaShape& s) {
  auto it = cache_.find(s);
  if (it != cache_.end()) return it->second;
  Entry e;
  auto* h = static_cast<cudnnHandle_t>(handle_.get());
  try {
    e.forward = build_forward(h, s);
    e.backward = build_backward(h, s);
  } catch (const Refused& r) {
    e.forward.reset();
    e.backward.reset();
    e.refused = r.reason;
  }
  return cache_.emplace(s, std::move(e)).first->second;
}

std::string CudnnAttention::unsupported(const SdpaShape& s) { return entry(s).refused; }

std::size_t CudnnAttention::forward_workspace_bytes(const SdpaShape& s) {
  const Entry& e = entry(s);
  return e.forward ? e.forward->total_bytes() : 0;
}

std::size_t CudnnAttention::backward_workspace_bytes(const SdpaShape& s) {
  const Entry& e = entry(s);
  return e.backward ? e.backward->total_bytes() : 0;
}

void CudnnAttention::forward(const SdpaShape& s, const void* q, const void* k, const void* v,
                             float scale, void* out, float* lse, void* workspace) {
  const Entry& e = entry(s);
  TAILOR_ASSERT(e.forward != nullptr, "cuDNN attention forward on a refused shape: {}", e.refused);
  float neg_inf = masked_value(), one = 1.0f, window = static_cast<float>(s.window);
  std::vector<std::int64_t> uids = {kQ, kK, kV, kO, kStats, kScale, kNegInf, kOne};
  std::vector<void*> ptrs = {const_cast<void*>(q),
                             const_cast<void*>(k),
                             const_cast<void*>(v),
                             out,
                             lse,
                             &scale,
                             &neg_inf,
                             &one};
  if (s.window > 0) {
    uids.push_back(kWindow);
    ptrs.push_back(&window);
  }
  execute(static_cast<cudnnHandle_t>(handle_.get()), *e.forward, std::move(uids), std::move(ptrs),
          workspace);
}

void CudnnAttention::backward(const SdpaShape& s, const void* dout, const void* q, const void* k,
                              const void* v, const void* out, const float* lse, float scale,
                              void* dq, void* dk, void* dv, void* workspace) {
  const Entry& e = entry(s);
  TAILOR_ASSERT(e.backward != nullptr, "cuDNN attention backward on a refused shape: {}",
                e.refused);
  const std::size_t offset = (static_cast<std::size_t>(e.backward->workspace) + 255) / 256 * 256;
  void* softmax_sum = static_cast<char*>(workspace) + offset;
  if (cudaMemsetAsync(softmax_sum, 0, static_cast<std::size_t>(e.backward->softmax_sum_bytes),
                      stream_) != cudaSuccess)
    throw_runtime_error("cuDNN attention: clearing the backward workspace failed: {}",
                        cudaGetErrorString(cudaGetLastError()));
  float neg_inf = masked_value(), one = 1.0f, window = static_cast<float>(s.window);
  std::vector<std::int64_t> uids = {kQ,  kK,  kV,          kO,     kDO,     kStats, kDQ,
                                    kDK, kDV, kSoftmaxSum, kScale, kNegInf, kOne};
  std::vector<void*> ptrs = {const_cast<void*>(q),
                             const_cast<void*>(k),
                             const_cast<void*>(v),
                             const_cast<void*>(out),
                             const_cast<void*>(dout),
                             const_cast<float*>(lse),
                             dq,
                             dk,
                             dv,
                             softmax_sum,
                             &scale,
                             &neg_inf,
                             &one};
  if (s.window > 0) {
    uids.push_back(kWindow);
    ptrs.push_back(&window);
  }
  execute(static_cast<cudnnHandle_t>(handle_.get()), *e.backward, std::move(uids), std::move(ptrs),
          workspace);
}

}  // namespace tailor::backend::cuda
