// Implementation of the op-test helpers (see ops_test_util.h).
#include "ops_test_util.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "backend/ops.h"
#include "core/error.h"
#include "core/rng.h"

namespace tailor::backend::test {

CpuOps& shared_ops() {
  static CpuOps ops(2);
  return ops;
}

HostTensor::HostTensor(DType dtype, Shape shape) : dtype_(dtype), shape_(shape) {
  const std::size_t bytes = static_cast<std::size_t>(shape.numel()) * dtype_size(dtype);
  storage_.assign((2 * kGuardBytes + bytes + 7) / 8, 0);
  auto* raw = reinterpret_cast<unsigned char*>(storage_.data());
  std::memset(raw, kGuardByte, storage_.size() * 8);
  std::memset(raw + kGuardBytes, 0, bytes);
}

unsigned char* HostTensor::base() const {
  return reinterpret_cast<unsigned char*>(storage_.data()) + kGuardBytes;
}

Tensor HostTensor::t() const { return Tensor{base(), dtype_, shape_, Device::kCpu}; }

double HostTensor::get(std::int64_t i) const {
  TAILOR_ASSERT(i >= 0 && i < numel(), "index {} of {}", i, numel());
  const unsigned char* p = base() + static_cast<std::size_t>(i) * dtype_size(dtype_);
  switch (dtype_) {
    case DType::kF32: {
      float v;
      std::memcpy(&v, p, 4);
      return v;
    }
    case DType::kF64: {
      double v;
      std::memcpy(&v, p, 8);
      return v;
    }
    case DType::kI32: {
      std::int32_t v;
      std::memcpy(&v, p, 4);
      return v;
    }
    case DType::kBF16: {
      BF16 v;
      std::memcpy(&v.bits, p, 2);
      return bf16_to_float(v);
    }
    default:
      break;
  }
  TAILOR_ASSERT(false, "unsupported dtype");
}

void HostTensor::set(std::int64_t i, double value) {
  TAILOR_ASSERT(i >= 0 && i < numel(), "index {} of {}", i, numel());
  unsigned char* p = base() + static_cast<std::size_t>(i) * dtype_size(dtype_);
  switch (dtype_) {
    case DType::kF32: {
      const auto v = static_cast<float>(value);
      std::memcpy(p, &v, 4);
      return;
    }
    case DType::kF64: {
      std::memcpy(p, &value, 8);
      return;
    }
    case DType::kI32: {
      const auto v = static_cast<std::int32_t>(value);
      std::memcpy(p, &v, 4);
      return;
    }
    case DType::kBF16: {
      const BF16 v = float_to_bf16(static_cast<float>(value));
      std::memcpy(p, &v.bits, 2);
      return;
    }
    default:
      break;
  }
  TAILOR_ASSERT(false, "unsupported dtype");
}

std::vector<double> HostTensor::values() const {
  std::vector<double> v(static_cast<std::size_t>(numel()));
  for (std::int64_t i = 0; i < numel(); ++i) v[static_cast<std::size_t>(i)] = get(i);
  return v;
}

void HostTensor::set_values(const std::vector<double>& v) {
  TAILOR_ASSERT(static_cast<std::int64_t>(v.size()) == numel(), "{} values for {}", v.size(),
                numel());
  for (std::int64_t i = 0; i < numel(); ++i) set(i, v[static_cast<std::size_t>(i)]);
}

HostTensor& HostTensor::normal(std::uint64_t seed, std::uint64_t stream, double sigma) {
  const CounterRng rng(seed, stream);
  for (std::int64_t i = 0; i < numel(); ++i)
    set(i, sigma * rng.normal(static_cast<std::uint64_t>(i)));
  return *this;
}

HostTensor& HostTensor::uniform(std::uint64_t seed, std::uint64_t stream, double lo, double hi) {
  const CounterRng rng(seed, stream);
  for (std::int64_t i = 0; i < numel(); ++i)
    set(i, lo + (hi - lo) * rng.uniform(static_cast<std::uint64_t>(i)));
  return *this;
}

HostTensor& HostTensor::integers(std::uint64_t seed, std::uint64_t stream, std::int64_t lo,
                                 std::int64_t hi) {
  const CounterRng rng(seed, stream);
  const auto span = static_cast<std::uint64_t>(hi - lo);
  for (std::int64_t i = 0; i < numel(); ++i) {
    set(i, static_cast<double>(
               lo + static_cast<std::int64_t>(rng.below(static_cast<std::uint64_t>(i), span))));
  }
  return *this;
}

bool HostTensor::guards_ok() const {
  const auto* raw = reinterpret_cast<const unsigned char*>(storage_.data());
  const std::size_t bytes = static_cast<std::size_t>(numel()) * dtype_size(dtype_);
  const std::size_t total = storage_.size() * 8;
  for (std::size_t i = 0; i < kGuardBytes; ++i)
    if (raw[i] != kGuardByte) return false;
  for (std::size_t i = kGuardBytes + bytes; i < total; ++i)
    if (raw[i] != kGuardByte) return false;
  return true;
}

std::vector<unsigned char> HostTensor::bytes() const {
  const std::size_t n = static_cast<std::size_t>(numel()) * dtype_size(dtype_);
  return {base(), base() + n};
}

double rel_error(const std::vector<double>& got, const std::vector<double>& ref) {
  TAILOR_ASSERT(got.size() == ref.size(), "sizes {} and {}", got.size(), ref.size());
  double num = 0.0;
  double den = 0.0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double d = got[i] - ref[i];
    num += d * d;
    den += ref[i] * ref[i];
  }
  if (std::isnan(num)) return num;
  return std::sqrt(num) / std::max(std::sqrt(den), 1e-300);
}

std::vector<double> fd_grad(HostTensor& x, const std::function<double()>& loss, double h) {
  TAILOR_ASSERT(x.dtype() == DType::kF64, "finite differences run in f64");
  std::vector<double> g(static_cast<std::size_t>(x.numel()));
  for (std::int64_t i = 0; i < x.numel(); ++i) {
    const double x0 = x.get(i);
    x.set(i, x0 + h);
    const double lp = loss();
    x.set(i, x0 - h);
    const double lm = loss();
    x.set(i, x0);
    g[static_cast<std::size_t>(i)] = (lp - lm) / (2.0 * h);
  }
  return g;
}

double dot(const std::vector<double>& a, const std::vector<double>& b) {
  TAILOR_ASSERT(a.size() == b.size(), "sizes {} and {}", a.size(), b.size());
  double s = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

std::string dtype_label(DType d) { return std::string(dtype_name(d)); }

std::vector<std::int32_t> as_i32(const HostTensor& t) {
  std::vector<std::int32_t> v;
  v.reserve(static_cast<std::size_t>(t.numel()));
  for (double x : t.values()) v.push_back(static_cast<std::int32_t>(x));
  return v;
}

HostTensor make_doc_ids(std::int64_t b, std::int64_t t, Docs docs, std::uint64_t seed) {
  if (docs == Docs::kNone) return HostTensor(DType::kI32, Shape{0});
  HostTensor doc(DType::kI32, Shape{b, t});
  const CounterRng rng(seed, 99);
  for (std::int64_t r = 0; r < b; ++r) {
    std::int32_t id = 0;
    for (std::int64_t i = 0; i < t; ++i) {
      const auto u = static_cast<std::uint64_t>(r * t + i);
      if (docs == Docs::kPacked) {
        if (i > 0 && rng.below(u, 5) == 0) ++id;
        doc.set(r * t + i, id);
      } else {
        doc.set(r * t + i, static_cast<double>(rng.below(u, 3)));
      }
    }
  }
  return doc;
}

HostTensor make_targets(std::int64_t n, std::int64_t valid, std::uint64_t seed) {
  HostTensor t(DType::kI32, Shape{n});
  t.integers(seed, 1, 0, valid);
  const CounterRng rng(seed, 2);
  for (std::int64_t r = 1; r < n; ++r)
    if (rng.below(static_cast<std::uint64_t>(r), 4) == 0) t.set(r, kIgnoreIndex);
  return t;
}

HostTensor make_inv_freq(std::int64_t dh, double theta) {
  HostTensor f(DType::kF32, Shape{dh / 2});
  for (std::int64_t i = 0; i < dh / 2; ++i)
    f.set(i, std::pow(theta, -2.0 * static_cast<double>(i) / static_cast<double>(dh)));
  return f;
}

}  // namespace tailor::backend::test
