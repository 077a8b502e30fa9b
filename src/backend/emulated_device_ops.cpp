#include "backend/emulated_device_ops.h"

#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

#include <fmt/format.h>

#include "backend/host_convert.h"

namespace tailor::backend {
namespace {

constexpr std::align_val_t kAlign{64};

// Host views of one op's operands: device tensors relabelled as host memory, bf16 ones widened to
// f32 temporaries (one per distinct buffer, so aliased operands stay aliased); store() rounds the
// temporaries back into the bf16 buffers. Inputs survive the round trip unchanged (bf16 -> f32 ->
// bf16 is exact), so storing every operand back is safe.
class HostViews {
 public:
  HostViews() = default;
  HostViews(const HostViews&) = delete;
  HostViews& operator=(const HostViews&) = delete;

  Tensor operator()(const Tensor& t) {
    if (t.data == nullptr) return Tensor{nullptr, t.dtype, t.shape, Device::kCpu};
    TAILOR_ASSERT(t.device == Device::kCuda, "device op given host tensor {}", t.str());
    if (t.dtype != DType::kBF16) return Tensor{t.data, t.dtype, t.shape, Device::kCpu};
    const auto* lo = static_cast<const char*>(t.data);
    const char* hi = lo + t.bytes();
    for (Temp& w : temps_) {
      const auto* wlo = static_cast<const char*>(w.src.data);
      const char* whi = wlo + w.src.bytes();
      if (wlo == lo && whi == hi) return w.wide.view(t.shape);
      TAILOR_ASSERT(hi <= wlo || whi <= lo, "operands {} and {} overlap partially", t.str(),
                    w.src.str());
    }
    Temp w{t, Buffer(DType::kF32, t.shape)};
    convert_host(w.wide.data(), DType::kF32, t.data, DType::kBF16, 0, t.numel());
    temps_.push_back(std::move(w));
    return temps_.back().wide.tensor();
  }

  void store() {
    for (Temp& w : temps_)
      convert_host(w.src.data, DType::kBF16, w.wide.data(), DType::kF32, 0, w.src.numel());
    temps_.clear();
  }

 private:
  struct Temp {
    Tensor src;
    Buffer wide;
  };
  std::vector<Temp> temps_;
};

// Any tensor as host memory, whichever side it is on (the emulated device is host memory).
Tensor as_host(const Tensor& t) { return Tensor{t.data, t.dtype, t.shape, Device::kCpu}; }

}  // namespace

class EmulatedDeviceOps::Memory final : public DeviceMemory {
 public:
  void* allocate(std::size_t bytes) override {
    try {
      return ::operator new(bytes, kAlign);
    } catch (const std::bad_alloc&) {
      throw_runtime_error("emulated device: out of memory allocating {} bytes", bytes);
    }
  }
  void release(void* p) noexcept override { ::operator delete(p, kAlign); }
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
};

bool cuda_emulation_requested() noexcept {
  const char* v = std::getenv("TAILOR_EMULATE_CUDA");
  return v != nullptr && std::string_view(v) == "1";
}

EmulatedDeviceOps::EmulatedDeviceOps(int threads)
    : memory_(std::make_unique<Memory>()), cpu_(threads) {
  TAILOR_ASSERT(!has_device_memory(), "a device backend exists already");
  set_device_memory(memory_.get());
}

EmulatedDeviceOps::~EmulatedDeviceOps() { set_device_memory(nullptr); }

std::string EmulatedDeviceOps::describe() const {
  return fmt::format("emulated CUDA device (CPU reference, bf16 storage widened per op) over {}",
                     cpu_.describe());
}

// Conversions and transfers in one: the emulated device is host memory.
void EmulatedDeviceOps::copy(const Tensor& dst, const Tensor& src) {
  cpu_.copy(as_host(dst), as_host(src));
}

void EmulatedDeviceOps::gemm(const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, const Tensor& c, double alpha, double beta) {
  HostViews h;
  cpu_.gemm(h(a), trans_a, h(b), trans_b, h(c), alpha, beta);
  h.store();
}

void EmulatedDeviceOps::fill(const Tensor& x, double value) {
  HostViews h;
  cpu_.fill(h(x), value);
  h.store();
}

void EmulatedDeviceOps::add(const Tensor& y, const Tensor& x, double alpha) {
  HostViews h;
  cpu_.add(h(y), h(x), alpha);
  h.store();
}

void EmulatedDeviceOps::scale(const Tensor& x, double alpha) {
  HostViews h;
  cpu_.scale(h(x), alpha);
  h.store();
}

double EmulatedDeviceOps::sum_squares(const Tensor& x) {
  HostViews h;
  const double r = cpu_.sum_squares(h(x));
  h.store();
  return r;
}

void EmulatedDeviceOps::add_bias(const Tensor& y, const Tensor& bias) {
  HostViews h;
  cpu_.add_bias(h(y), h(bias));
  h.store();
}

void EmulatedDeviceOps::bias_backward(const Tensor& dbias, const Tensor& dy) {
  HostViews h;
  cpu_.bias_backward(h(dbias), h(dy));
  h.store();
}

void EmulatedDeviceOps::embedding_forward(const Tensor& table, const Tensor& ids, std::int64_t vocab_begin, const Tensor& out) {
  HostViews h;
  cpu_.embedding_forward(h(table), h(ids), vocab_begin, h(out));
  h.store();
}

void EmulatedDeviceOps::embedding_backward(const Tensor& dtable, const Tensor& ids, std::int64_t vocab_begin, const Tensor& dout) {
  HostViews h;
  cpu_.embedding_backward(h(dtable), h(ids), vocab_begin, h(dout));
  h.store();
}

void EmulatedDeviceOps::rmsnorm_forward(const Tensor& x, const Tensor& w, double eps, const Tensor& y, const Tensor& rstd) {
  HostViews h;
  cpu_.rmsnorm_forward(h(x), h(w), eps, h(y), h(rstd));
  h.store();
}

void EmulatedDeviceOps::rmsnorm_backward(const Tensor& dy, const Tensor& x, const Tensor& w, const Tensor& rstd, const Tensor& dx, const Tensor& dw) {
  HostViews h;
  cpu_.rmsnorm_backward(h(dy), h(x), h(w), h(rstd), h(dx), h(dw));
  h.store();
}

void EmulatedDeviceOps::layernorm_forward(const Tensor& x, const Tensor& w, const Tensor& b, double eps, const Tensor& y, const Tensor& mean, const Tensor& rstd) {
  HostViews h;
  cpu_.layernorm_forward(h(x), h(w), h(b), eps, h(y), h(mean), h(rstd));
  h.store();
}

void EmulatedDeviceOps::layernorm_backward(const Tensor& dy, const Tensor& x, const Tensor& w, const Tensor& mean, const Tensor& rstd, const Tensor& dx, const Tensor& dw, const Tensor& db) {
  HostViews h;
  cpu_.layernorm_backward(h(dy), h(x), h(w), h(mean), h(rstd), h(dx), h(dw), h(db));
  h.store();
}

void EmulatedDeviceOps::rope_forward(const Tensor& x, const Tensor& positions, const Tensor& inv_freq) {
  HostViews h;
  cpu_.rope_forward(h(x), h(positions), h(inv_freq));
  h.store();
}

void EmulatedDeviceOps::rope_backward(const Tensor& dx, const Tensor& positions, const Tensor& inv_freq) {
  HostViews h;
  cpu_.rope_backward(h(dx), h(positions), h(inv_freq));
  h.store();
}

void EmulatedDeviceOps::attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& doc_ids, double scale, const Tensor& out, const Tensor& lse) {
  HostViews h;
  cpu_.attention_forward(h(q), h(k), h(v), h(doc_ids), scale, h(out), h(lse));
  h.store();
}

void EmulatedDeviceOps::attention_backward(const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out, const Tensor& lse, const Tensor& doc_ids, double scale, const Tensor& dq, const Tensor& dk, const Tensor& dv) {
  HostViews h;
  cpu_.attention_backward(h(dout), h(q), h(k), h(v), h(out), h(lse), h(doc_ids), scale, h(dq), h(dk), h(dv));
  h.store();
}

void EmulatedDeviceOps::attention_cached(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& start, double scale, const Tensor& out) {
  HostViews h;
  cpu_.attention_cached(h(q), h(k), h(v), h(start), scale, h(out));
  h.store();
}

void EmulatedDeviceOps::swiglu_forward(const Tensor& gate, const Tensor& up, const Tensor& out) {
  HostViews h;
  cpu_.swiglu_forward(h(gate), h(up), h(out));
  h.store();
}

void EmulatedDeviceOps::swiglu_backward(const Tensor& dout, const Tensor& gate, const Tensor& up, const Tensor& dgate, const Tensor& dup) {
  HostViews h;
  cpu_.swiglu_backward(h(dout), h(gate), h(up), h(dgate), h(dup));
  h.store();
}

void EmulatedDeviceOps::gelu_forward(const Tensor& x, const Tensor& out) {
  HostViews h;
  cpu_.gelu_forward(h(x), h(out));
  h.store();
}

void EmulatedDeviceOps::gelu_backward(const Tensor& dout, const Tensor& x, const Tensor& dx) {
  HostViews h;
  cpu_.gelu_backward(h(dout), h(x), h(dx));
  h.store();
}

void EmulatedDeviceOps::dropout(const Tensor& src, const Tensor& dst, double p, const DropoutKey& key) {
  HostViews h;
  cpu_.dropout(h(src), h(dst), p, key);
  h.store();
}

void EmulatedDeviceOps::cross_entropy(const Tensor& logits, const Tensor& targets, std::int64_t valid_vocab, const Tensor& losses, const Tensor& dlogits, double dscale) {
  HostViews h;
  cpu_.cross_entropy(h(logits), h(targets), valid_vocab, h(losses), h(dlogits), dscale);
  h.store();
}

void EmulatedDeviceOps::ce_local_max(const Tensor& logits, std::int64_t valid_cols, const Tensor& row_max) {
  HostViews h;
  cpu_.ce_local_max(h(logits), valid_cols, h(row_max));
  h.store();
}

void EmulatedDeviceOps::ce_local_sums(const Tensor& logits, const Tensor& targets, std::int64_t vocab_begin, std::int64_t valid_cols, const Tensor& row_max, const Tensor& stats) {
  HostViews h;
  cpu_.ce_local_sums(h(logits), h(targets), vocab_begin, valid_cols, h(row_max), h(stats));
  h.store();
}

void EmulatedDeviceOps::ce_finish(const Tensor& logits, const Tensor& targets, std::int64_t vocab_begin, std::int64_t valid_cols, const Tensor& row_max, const Tensor& stats, const Tensor& losses, const Tensor& dlogits, double dscale) {
  HostViews h;
  cpu_.ce_finish(h(logits), h(targets), vocab_begin, valid_cols, h(row_max), h(stats), h(losses), h(dlogits), dscale);
  h.store();
}

void EmulatedDeviceOps::adamw_update(const Tensor& param, const Tensor& grad, const Tensor& m, const Tensor& v, const AdamWHyper& hyper) {
  HostViews h;
  cpu_.adamw_update(h(param), h(grad), h(m), h(v), hyper);
  h.store();
}
}  // namespace tailor::backend
