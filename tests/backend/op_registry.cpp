// The op registry's runner and backend modes (see op_registry.h).
#include "op_registry.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <string_view>

#include "backend/cpu/cpu_ops.h"
#include "backend/emulated_device_ops.h"
#include "core/error.h"
#ifdef TAILOR_HAVE_CUDA
#include "backend/cuda/context.h"
#include "backend/cuda/cuda_ops.h"
#endif

namespace tailor::backend::test {
namespace {

constexpr std::uint64_t kDefaultSeed = 17;
// Guard elements hold this value (stored in the tensor's dtype); a write out of bounds that
// leaves exactly these bytes behind is improbable.
constexpr double kGuardValue = -31337.0;

std::int64_t guard_elems(DType dtype) {
  return static_cast<std::int64_t>(kGuardBytes / dtype_size(dtype));
}

}  // namespace

OpCase make_case(const std::string& name, Scale scale) {
  for (const OpEntry& e : op_table())
    if (name == e.name) return e.make(scale);
  TAILOR_ASSERT(false, "no op {} in the registry", name);
  return {};
}

// ---- backends ----------------------------------------------------------------------------------

const std::vector<BackendMode>& backend_modes() {
  static const std::vector<BackendMode> modes = [] {
    const auto cpu = [](int threads, std::string&) -> std::unique_ptr<Ops> {
      return std::make_unique<CpuOps>(threads);
    };
    const auto emulated = [](int threads, std::string&) -> std::unique_ptr<Ops> {
      return std::make_unique<EmulatedDeviceOps>(threads);
    };
    std::vector<BackendMode> m = {
        {"cpu_f32", DType::kF32, cpu, false},
        {"emulated_f32", DType::kF32, emulated, false},
        {"emulated_bf16", DType::kBF16, emulated, false},
    };
#ifdef TAILOR_HAVE_CUDA
    const auto gpu = [](int, std::string& why) -> std::unique_ptr<Ops> {
      if (cuda::CudaContext::device_count() == 0) {
        why = "no GPU visible";
        return nullptr;
      }
      return std::make_unique<cuda::CudaOps>(0);
    };
    // cuda_bf16 runs cuDNN's fused attention where it can (runtime.attention: auto);
    // cuda_bf16_tailor is the same backend held to Tailor's kernels, so the two are compared
    // (and timed) side by side.
    const auto gpu_tailor = [gpu](int threads, std::string& why) -> std::unique_ptr<Ops> {
      std::unique_ptr<Ops> ops = gpu(threads, why);
      if (ops) static_cast<cuda::CudaOps&>(*ops).set_attention_path(cuda::AttentionPath::kTailor);
      return ops;
    };
    m.push_back({"cuda_f32", DType::kF32, gpu, true});
    m.push_back({"cuda_bf16", DType::kBF16, gpu, true});
    m.push_back({"cuda_bf16_tailor", DType::kBF16, gpu_tailor, true});
#endif
    return m;
  }();
  return modes;
}

const BackendMode& reference_mode() {
  static const BackendMode ref{"cpu_f64", DType::kF64,
                               [](int threads, std::string&) -> std::unique_ptr<Ops> {
                                 return std::make_unique<CpuOps>(threads);
                               },
                               false};
  return ref;
}

bool gpu_required() {
  const char* v = std::getenv("TAILOR_REQUIRE_GPU");
  return v != nullptr && std::string_view(v) == "1";
}

double tolerance(DType storage) {
  switch (storage) {
    case DType::kF64:
      return 1e-12;
    case DType::kF32:
      return 1e-5;  // ARCHITECTURE.md: CUDA f32 (TF32 off) vs CPU
    default:
      return 1e-2;  // bf16 storage vs CPU on the same rounded inputs
  }
}

// ---- running a case ----------------------------------------------------------------------------

DType dtype_of(Kind kind, DType storage) {
  switch (kind) {
    case Kind::kStore:
      return storage;
    case Kind::kAccum:
      return accum_dtype(storage);
    case Kind::kF32:
      return DType::kF32;
    case Kind::kI32:
      return DType::kI32;
  }
  return storage;
}

std::vector<HostTensor> make_inputs(const OpCase& c, DType storage) {
  std::vector<HostTensor> images;
  images.reserve(c.tensors.size());
  for (std::size_t i = 0; i < c.tensors.size(); ++i) {
    const TensorSpec& t = c.tensors[i];
    HostTensor& h = images.emplace_back(dtype_of(t.kind, storage), t.shape);
    if (t.role == Role::kOut || t.role == Role::kSaved) {
      TAILOR_ASSERT(t.kind != Kind::kI32, "{}: written i32 tensors are not supported", t.name);
      for (std::int64_t e = 0; e < h.numel(); ++e)
        h.set(e, std::numeric_limits<double>::quiet_NaN());
    } else if (t.init) {
      t.init(h, i);
    } else {
      h.normal(kDefaultSeed, i);
    }
  }
  return images;
}

std::vector<HostTensor> widen_to_f64(const OpCase& c, const std::vector<HostTensor>& inputs) {
  std::vector<HostTensor> wide;
  wide.reserve(inputs.size());
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const Kind k = c.tensors[i].kind;
    HostTensor& h = wide.emplace_back(
        k == Kind::kF32 || k == Kind::kI32 ? inputs[i].dtype() : DType::kF64, inputs[i].shape());
    h.set_values(inputs[i].values());
  }
  return wide;
}

PlacedCase::PlacedCase(const OpCase& c, Ops& ops, const std::vector<HostTensor>& images)
    : case_(&c), ops_(&ops) {
  TAILOR_ASSERT(images.size() == c.tensors.size(), "{} images for {} tensors", images.size(),
                c.tensors.size());
  for (const HostTensor& image : images) {
    const std::int64_t g = guard_elems(image.dtype());
    const std::int64_t n = image.numel();
    HostTensor& frame = frames_.emplace_back(image.dtype(), Shape{g + n + g});
    for (std::int64_t e = 0; e < g; ++e) {
      frame.set(e, kGuardValue);
      frame.set(g + n + e, kGuardValue);
    }
    for (std::int64_t e = 0; e < n; ++e) frame.set(g + e, image.get(e));
    Buffer& b = buffers_.emplace_back(ops.alloc(image.dtype(), frame.shape()));
    ops.copy(b.tensor(), frame.t());  // same dtype: the bytes, guards included
    args_.push_back(b.tensor().flat_slice(g, g + n).view(image.shape()));
  }
}

void PlacedCase::setup() {
  if (case_->setup) (void)case_->setup(*ops_, args_);
}

std::optional<double> PlacedCase::run() { return case_->run(*ops_, args_); }

RunResult PlacedCase::read_back() const {
  RunResult r;
  for (std::size_t i = 0; i < frames_.size(); ++i) {
    const HostTensor& sent = frames_[i];
    HostTensor back(sent.dtype(), sent.shape());
    ops_->copy(back.t(), buffers_[i].tensor());
    const std::int64_t g = guard_elems(sent.dtype());
    const std::int64_t n = args_[i].numel();
    const std::size_t es = dtype_size(sent.dtype());
    const std::vector<unsigned char> a = sent.bytes(), b = back.bytes();
    const auto same = [&](std::int64_t from, std::int64_t to) {
      return std::equal(a.begin() + from * static_cast<std::int64_t>(es),
                        a.begin() + to * static_cast<std::int64_t>(es),
                        b.begin() + from * static_cast<std::int64_t>(es));
    };
    const std::string& name = case_->tensors[i].name;
    if (!same(0, g) || !same(g + n, g + n + g)) r.broken_guards.push_back(name);
    if (case_->tensors[i].role == Role::kIn && !same(g, g + n)) r.changed_inputs.push_back(name);
    std::vector<double>& v = r.values.emplace_back(static_cast<std::size_t>(n));
    for (std::int64_t e = 0; e < n; ++e) v[static_cast<std::size_t>(e)] = back.get(g + e);
  }
  return r;
}

RunResult run_case(const OpCase& c, Ops& ops, const std::vector<HostTensor>& images) {
  PlacedCase p(c, ops, images);
  p.setup();
  const std::optional<double> value = p.run();
  RunResult r = p.read_back();
  r.value = value;
  return r;
}

double bytes_moved(const OpCase& c, DType storage) {
  double bytes = 0.0;
  for (const TensorSpec& t : c.tensors) {
    const double b = t.touched * static_cast<double>(t.shape.numel()) *
                     static_cast<double>(dtype_size(dtype_of(t.kind, storage)));
    bytes += t.role == Role::kInOut ? 2.0 * b : b;
  }
  return bytes;
}

}  // namespace tailor::backend::test
