#include "backend/emulated_device_ops.h"
#include "core/environment.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>
#include <type_traits>
#include <vector>

#include <fmt/format.h>

#include "backend/host_convert.h"
#include "core/logging.h"

namespace tailor::backend {
namespace {

constexpr std::align_val_t kAlign{64};

// The operands of a forwarded op: In is only read, Out is written (or read and written).
struct In {
  const Tensor& t;
};
struct Out {
  const Tensor& t;
};

// Host views of one op's operands: device tensors relabelled as host memory, bf16 ones widened to
// f32 temporaries (one per distinct buffer, so aliased operands stay aliased); store() rounds the
// temporaries of written operands back into their bf16 buffers, once.
class HostViews {
 public:
  HostViews() = default;
  HostViews(const HostViews&) = delete;
  HostViews& operator=(const HostViews&) = delete;

  Tensor view(const In& x) { return host(x.t, false); }
  Tensor view(const Out& x) { return host(x.t, true); }
  // Anything but a tensor (sizes, scalars, keys) passes through.
  template <typename T>
  const T& view(const T& x) {
    static_assert(!std::is_same_v<T, Tensor>, "mark tensor operands In or Out");
    return x;
  }

  void store() {
    for (Temp& w : temps_)
      if (w.written)
        convert_host(w.src.data, DType::kBF16, w.wide.data(), DType::kF32, 0, w.src.numel());
    temps_.clear();
  }

 private:
  Tensor host(const Tensor& t, bool written) {
    if (t.data == nullptr) return Tensor{nullptr, t.dtype, t.shape, Device::kCpu};
    TAILOR_ASSERT(t.device == Device::kCuda, "device op given host tensor {}", t.str());
    if (t.dtype != DType::kBF16) return Tensor{t.data, t.dtype, t.shape, Device::kCpu};
    const auto* lo = static_cast<const char*>(t.data);
    const char* hi = lo + t.bytes();
    for (Temp& w : temps_) {
      const auto* wlo = static_cast<const char*>(w.src.data);
      const char* whi = wlo + w.src.bytes();
      if (wlo == lo && whi == hi) {
        w.written = w.written || written;
        return w.wide.view(t.shape);
      }
      TAILOR_ASSERT(hi <= wlo || whi <= lo, "operands {} and {} overlap partially", t.str(),
                    w.src.str());
    }
    Temp w{t, Buffer(DType::kF32, t.shape), written};
    convert_host(w.wide.data(), DType::kF32, t.data, DType::kBF16, 0, t.numel());
    temps_.push_back(std::move(w));
    return temps_.back().wide.tensor();
  }

  struct Temp {
    Tensor src;
    Buffer wide;
    bool written = false;
  };
  std::vector<Temp> temps_;
};

// Runs `op` of the CPU reference on host views of the arguments and rounds the written bf16
// operands back: what a GPU kernel computes from bf16 storage (widen, f32, round once on store).
template <typename Op, typename... Args>
auto on_host(CpuOps& cpu, Op op, const Args&... args) {
  HostViews h;
  if constexpr (std::is_void_v<decltype((cpu.*op)(h.view(args)...))>) {
    (cpu.*op)(h.view(args)...);
    h.store();
  } else {
    const auto result = (cpu.*op)(h.view(args)...);
    h.store();
    return result;
  }
}

// Any tensor as host memory, whichever side it is on (the emulated device is host memory).
Tensor as_host(const Tensor& t) { return Tensor{t.data, t.dtype, t.shape, Device::kCpu}; }

}  // namespace

// Host memory standing for the device's. It counts the allocations still held: a Buffer that
// outlived its backend would otherwise free into a destroyed allocator (see ~EmulatedDeviceOps).
class EmulatedDeviceOps::Memory final : public DeviceMemory {
 public:
  void* allocate(std::size_t bytes) override {
    try {
      void* p = ::operator new(bytes, kAlign);
      ++live_;
      return p;
    } catch (const std::bad_alloc&) {
      throw_runtime_error("emulated device: out of memory allocating {} bytes", bytes);
    }
  }
  void release(void* p) noexcept override {
    ::operator delete(p, kAlign);
    --live_;
  }
  void zero(void* p, std::size_t bytes) override { std::memset(p, 0, bytes); }
  void to_host(void* host, const void* device, std::size_t bytes) override {
    std::memmove(host, device, bytes);
  }
  void from_host(void* device, const void* host, std::size_t bytes) override {
    std::memmove(device, host, bytes);
  }
  void on_device(void* dst, const void* src, std::size_t bytes) override {
    std::memmove(dst, src, bytes);
  }
  [[nodiscard]] std::size_t live() const noexcept { return live_; }

 private:
  std::atomic<std::size_t> live_{0};
};

bool cuda_emulation_requested() noexcept {
  return env::is_one("TAILOR_EMULATE_CUDA");
}

EmulatedDeviceOps::EmulatedDeviceOps(int threads)
    : memory_(std::make_unique<Memory>()), cpu_(threads) {}

EmulatedDeviceOps::~EmulatedDeviceOps() {
  if (memory_->live() == 0) return;
  // A broken ownership rule (the backend must outlive its buffers): report it, and leave the
  // allocator alive so that those buffers' releases stay safe.
  log::error("emulated device: {} buffers outlive the backend that allocated them",
             memory_->live());
  (void)memory_.release();  // NOLINT(bugprone-unused-return-value): leaked on purpose
}

DeviceMemory* EmulatedDeviceOps::device_memory() const noexcept { return memory_.get(); }

std::string EmulatedDeviceOps::describe() const {
  return fmt::format("emulated CUDA device (CPU reference, bf16 storage widened per op) over {}",
                     cpu_.describe());
}

// Conversions and transfers in one: the emulated device is host memory.
void EmulatedDeviceOps::copy(const Tensor& dst, const Tensor& src) {
  cpu_.copy(as_host(dst), as_host(src));
}

// Each op: the CPU reference on host views (In operands read, Out operands written).
void EmulatedDeviceOps::gemm(const Tensor& a, bool trans_a, const Tensor& b, bool trans_b,
                             const Tensor& c, double alpha, double beta) {
  on_host(cpu_, &CpuOps::gemm, In{a}, trans_a, In{b}, trans_b, Out{c}, alpha, beta);
}

void EmulatedDeviceOps::fill(const Tensor& x, double value) {
  on_host(cpu_, &CpuOps::fill, Out{x}, value);
}

void EmulatedDeviceOps::add(const Tensor& y, const Tensor& x, double alpha) {
  on_host(cpu_, &CpuOps::add, Out{y}, In{x}, alpha);
}

void EmulatedDeviceOps::scale(const Tensor& x, double alpha) {
  on_host(cpu_, &CpuOps::scale, Out{x}, alpha);
}

double EmulatedDeviceOps::sum_squares(const Tensor& x) {
  return on_host(cpu_, &CpuOps::sum_squares, In{x});
}

void EmulatedDeviceOps::add_bias(const Tensor& y, const Tensor& bias) {
  on_host(cpu_, &CpuOps::add_bias, Out{y}, In{bias});
}

void EmulatedDeviceOps::bias_backward(const Tensor& dbias, const Tensor& dy) {
  on_host(cpu_, &CpuOps::bias_backward, Out{dbias}, In{dy});
}

void EmulatedDeviceOps::scale_columns(const Tensor& y, const Tensor& s) {
  on_host(cpu_, &CpuOps::scale_columns, Out{y}, In{s});
}

void EmulatedDeviceOps::scale_columns_backward(const Tensor& ds, const Tensor& dy,
                                               const Tensor& x) {
  on_host(cpu_, &CpuOps::scale_columns_backward, Out{ds}, In{dy}, In{x});
}

void EmulatedDeviceOps::embedding_forward(const Tensor& table, const Tensor& ids,
                                          std::int64_t vocab_begin, const Tensor& out) {
  on_host(cpu_, &CpuOps::embedding_forward, In{table}, In{ids}, vocab_begin, Out{out});
}

void EmulatedDeviceOps::embedding_backward(const Tensor& dtable, const Tensor& ids,
                                           std::int64_t vocab_begin, const Tensor& dout) {
  on_host(cpu_, &CpuOps::embedding_backward, Out{dtable}, In{ids}, vocab_begin, In{dout});
}

void EmulatedDeviceOps::rmsnorm_forward(const Tensor& x, const Tensor& w, double eps,
                                        const Tensor& y, const Tensor& rstd) {
  on_host(cpu_, &CpuOps::rmsnorm_forward, In{x}, In{w}, eps, Out{y}, Out{rstd});
}

void EmulatedDeviceOps::rmsnorm_backward(const Tensor& dy, const Tensor& x, const Tensor& w,
                                         const Tensor& rstd, const Tensor& dx, const Tensor& dw) {
  on_host(cpu_, &CpuOps::rmsnorm_backward, In{dy}, In{x}, In{w}, In{rstd}, Out{dx}, Out{dw});
}

void EmulatedDeviceOps::layernorm_forward(const Tensor& x, const Tensor& w, const Tensor& b,
                                          double eps, const Tensor& y, const Tensor& mean,
                                          const Tensor& rstd) {
  on_host(cpu_, &CpuOps::layernorm_forward, In{x}, In{w}, In{b}, eps, Out{y}, Out{mean}, Out{rstd});
}

void EmulatedDeviceOps::layernorm_backward(const Tensor& dy, const Tensor& x, const Tensor& w,
                                           const Tensor& mean, const Tensor& rstd, const Tensor& dx,
                                           const Tensor& dw, const Tensor& db) {
  on_host(cpu_, &CpuOps::layernorm_backward, In{dy}, In{x}, In{w}, In{mean}, In{rstd}, Out{dx},
          Out{dw}, Out{db});
}

void EmulatedDeviceOps::rope_forward(const Tensor& x, const Tensor& positions,
                                     const Tensor& inv_freq) {
  on_host(cpu_, &CpuOps::rope_forward, Out{x}, In{positions}, In{inv_freq});
}

void EmulatedDeviceOps::rope_backward(const Tensor& dx, const Tensor& positions,
                                      const Tensor& inv_freq) {
  on_host(cpu_, &CpuOps::rope_backward, Out{dx}, In{positions}, In{inv_freq});
}

void EmulatedDeviceOps::attention_forward(const Tensor& q, const Tensor& k, const Tensor& v,
                                          const Tensor& doc_ids, double scale,
                                          std::int64_t window, const Tensor& out,
                                          const Tensor& lse) {
  on_host(cpu_, &CpuOps::attention_forward, In{q}, In{k}, In{v}, In{doc_ids}, scale, window,
          Out{out}, Out{lse});
}

void EmulatedDeviceOps::attention_backward(const Tensor& dout, const Tensor& q, const Tensor& k,
                                           const Tensor& v, const Tensor& out, const Tensor& lse,
                                           const Tensor& doc_ids, double scale,
                                           std::int64_t window, const Tensor& dq,
                                           const Tensor& dk, const Tensor& dv) {
  on_host(cpu_, &CpuOps::attention_backward, In{dout}, In{q}, In{k}, In{v}, In{out}, In{lse},
          In{doc_ids}, scale, window, Out{dq}, Out{dk}, Out{dv});
}

void EmulatedDeviceOps::attention_cached(const Tensor& q, const Tensor& k, const Tensor& v,
                                         const Tensor& start, double scale, std::int64_t window,
                                         const Tensor& out) {
  on_host(cpu_, &CpuOps::attention_cached, In{q}, In{k}, In{v}, In{start}, scale, window,
          Out{out});
}

void EmulatedDeviceOps::swiglu_forward(const Tensor& gate, const Tensor& up, const Tensor& out) {
  on_host(cpu_, &CpuOps::swiglu_forward, In{gate}, In{up}, Out{out});
}

void EmulatedDeviceOps::geglu_forward(const Tensor& gate, const Tensor& up, const Tensor& out) {
  on_host(cpu_, &CpuOps::geglu_forward, In{gate}, In{up}, Out{out});
}

void EmulatedDeviceOps::geglu_backward(const Tensor& dout, const Tensor& gate, const Tensor& up,
                                       const Tensor& dgate, const Tensor& dup) {
  on_host(cpu_, &CpuOps::geglu_backward, In{dout}, In{gate}, In{up}, Out{dgate}, Out{dup});
}

void EmulatedDeviceOps::swiglu_backward(const Tensor& dout, const Tensor& gate, const Tensor& up,
                                        const Tensor& dgate, const Tensor& dup) {
  on_host(cpu_, &CpuOps::swiglu_backward, In{dout}, In{gate}, In{up}, Out{dgate}, Out{dup});
}

void EmulatedDeviceOps::gelu_forward(const Tensor& x, const Tensor& out) {
  on_host(cpu_, &CpuOps::gelu_forward, In{x}, Out{out});
}

void EmulatedDeviceOps::gelu_backward(const Tensor& dout, const Tensor& x, const Tensor& dx) {
  on_host(cpu_, &CpuOps::gelu_backward, In{dout}, In{x}, Out{dx});
}

void EmulatedDeviceOps::dropout(const Tensor& src, const Tensor& dst, double p,
                                const DropoutKey& key) {
  on_host(cpu_, &CpuOps::dropout, In{src}, Out{dst}, p, key);
}

void EmulatedDeviceOps::cross_entropy(const Tensor& logits, const Tensor& targets,
                                      std::int64_t valid_vocab, const Tensor& losses,
                                      const Tensor& dlogits, double dscale) {
  on_host(cpu_, &CpuOps::cross_entropy, In{logits}, In{targets}, valid_vocab, Out{losses},
          Out{dlogits}, dscale);
}

void EmulatedDeviceOps::ce_local_max(const Tensor& logits, std::int64_t valid_cols,
                                     const Tensor& row_max) {
  on_host(cpu_, &CpuOps::ce_local_max, In{logits}, valid_cols, Out{row_max});
}

void EmulatedDeviceOps::ce_local_sums(const Tensor& logits, const Tensor& targets,
                                      std::int64_t vocab_begin, std::int64_t valid_cols,
                                      const Tensor& row_max, const Tensor& stats) {
  on_host(cpu_, &CpuOps::ce_local_sums, In{logits}, In{targets}, vocab_begin, valid_cols,
          In{row_max}, Out{stats});
}

void EmulatedDeviceOps::ce_finish(const Tensor& logits, const Tensor& targets,
                                  std::int64_t vocab_begin, std::int64_t valid_cols,
                                  const Tensor& row_max, const Tensor& stats, const Tensor& losses,
                                  const Tensor& dlogits, double dscale) {
  on_host(cpu_, &CpuOps::ce_finish, In{logits}, In{targets}, vocab_begin, valid_cols, In{row_max},
          In{stats}, Out{losses}, Out{dlogits}, dscale);
}

void EmulatedDeviceOps::adamw_update(const Tensor& param, const Tensor& grad, const Tensor& m,
                                     const Tensor& v, const AdamWHyper& hyper) {
  on_host(cpu_, &CpuOps::adamw_update, Out{param}, In{grad}, Out{m}, Out{v}, hyper);
}

}  // namespace tailor::backend
