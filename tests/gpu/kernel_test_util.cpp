#include "kernel_test_util.h"

#include <cmath>
#include <type_traits>
#include <utility>

#include <cuda_runtime.h>

#include "core/rng.h"
#include "kernels/cuda_check.cuh"

namespace tailor::testing {

DeviceTensor::DeviceTensor(DType dtype, std::int64_t numel) : dtype_(dtype), numel_(numel) {
  const std::size_t bytes = static_cast<std::size_t>(numel) * element_bytes();
  void* p = nullptr;
  TAILOR_CUDA_CHECK(cudaMalloc(&p, bytes + 2 * kGuardBytes));
  base_ = static_cast<unsigned char*>(p);
  TAILOR_CUDA_CHECK(cudaMemset(base_, kGuardByte, kGuardBytes));
  if (bytes > 0) TAILOR_CUDA_CHECK(cudaMemset(base_ + kGuardBytes, 0xFF, bytes));
  TAILOR_CUDA_CHECK(cudaMemset(base_ + kGuardBytes + bytes, kGuardByte, kGuardBytes));
}

DeviceTensor::~DeviceTensor() {
  if (base_ != nullptr) (void)cudaFree(base_);
}

DeviceTensor::DeviceTensor(DeviceTensor&& other) noexcept
    : dtype_(other.dtype_), numel_(other.numel_), base_(std::exchange(other.base_, nullptr)) {}

std::size_t DeviceTensor::element_bytes() const noexcept { return dtype_size(dtype_); }

template <typename T>
T* DeviceTensor::as() const {
  DType want = DType::kBF16;
  if constexpr (!std::is_same_v<T, std::uint16_t>) want = DTypeOf<T>::value;
  TAILOR_ASSERT(dtype_ == want, "device tensor is {}, asked for {}", dtype_name(dtype_),
                dtype_name(want));
  return reinterpret_cast<T*>(base_ + kGuardBytes);
}
template float* DeviceTensor::as<float>() const;
template double* DeviceTensor::as<double>() const;
template std::uint16_t* DeviceTensor::as<std::uint16_t>() const;
template std::int32_t* DeviceTensor::as<std::int32_t>() const;

DeviceTensor DeviceTensor::from(DType dtype, const std::vector<float>& values) {
  DeviceTensor t(dtype, static_cast<std::int64_t>(values.size()));
  t.upload(values);
  return t;
}

DeviceTensor DeviceTensor::from_f64(const std::vector<double>& values) {
  DeviceTensor t(DType::kF64, static_cast<std::int64_t>(values.size()));
  if (!values.empty())
    TAILOR_CUDA_CHECK(cudaMemcpy(t.as<double>(), values.data(), values.size() * sizeof(double),
                                 cudaMemcpyHostToDevice));
  return t;
}

DeviceTensor DeviceTensor::from_i32(const std::vector<std::int32_t>& values) {
  DeviceTensor t(DType::kI32, static_cast<std::int64_t>(values.size()));
  if (!values.empty())
    TAILOR_CUDA_CHECK(cudaMemcpy(t.as<std::int32_t>(), values.data(),
                                 values.size() * sizeof(std::int32_t), cudaMemcpyHostToDevice));
  return t;
}

void DeviceTensor::upload(const std::vector<float>& values) {
  TAILOR_ASSERT(static_cast<std::int64_t>(values.size()) == numel_, "upload of {} values into {}",
                values.size(), numel_);
  if (values.empty()) return;
  if (dtype_ == DType::kF32) {
    TAILOR_CUDA_CHECK(cudaMemcpy(as<float>(), values.data(), values.size() * sizeof(float),
                                 cudaMemcpyHostToDevice));
    return;
  }
  std::vector<std::uint16_t> bits(values.size());
  for (std::size_t i = 0; i < values.size(); ++i) bits[i] = float_to_bf16(values[i]).bits;
  TAILOR_CUDA_CHECK(
      cudaMemcpy(as<std::uint16_t>(), bits.data(), bits.size() * 2, cudaMemcpyHostToDevice));
}

std::vector<float> DeviceTensor::to_f32() const {
  std::vector<float> out(static_cast<std::size_t>(numel_));
  if (out.empty()) return out;
  if (dtype_ == DType::kF32) {
    TAILOR_CUDA_CHECK(
        cudaMemcpy(out.data(), as<float>(), out.size() * sizeof(float), cudaMemcpyDeviceToHost));
    return out;
  }
  std::vector<std::uint16_t> bits(out.size());
  TAILOR_CUDA_CHECK(
      cudaMemcpy(bits.data(), as<std::uint16_t>(), bits.size() * 2, cudaMemcpyDeviceToHost));
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = bf16_to_float(BF16{bits[i]});
  return out;
}

std::vector<double> DeviceTensor::to_f64() const {
  std::vector<double> out(static_cast<std::size_t>(numel_));
  if (out.empty()) return out;
  TAILOR_CUDA_CHECK(
      cudaMemcpy(out.data(), as<double>(), out.size() * sizeof(double), cudaMemcpyDeviceToHost));
  return out;
}

std::vector<std::int32_t> DeviceTensor::to_i32() const {
  std::vector<std::int32_t> out(static_cast<std::size_t>(numel_));
  if (out.empty()) return out;
  TAILOR_CUDA_CHECK(cudaMemcpy(out.data(), as<std::int32_t>(), out.size() * sizeof(std::int32_t),
                               cudaMemcpyDeviceToHost));
  return out;
}

std::vector<unsigned char> DeviceTensor::bytes() const {
  std::vector<unsigned char> out(static_cast<std::size_t>(numel_) * element_bytes());
  if (out.empty()) return out;
  TAILOR_CUDA_CHECK(
      cudaMemcpy(out.data(), base_ + kGuardBytes, out.size(), cudaMemcpyDeviceToHost));
  return out;
}

bool DeviceTensor::guards_intact() const {
  const std::size_t bytes = static_cast<std::size_t>(numel_) * element_bytes();
  std::vector<unsigned char> front(kGuardBytes);
  std::vector<unsigned char> back(kGuardBytes);
  TAILOR_CUDA_CHECK(cudaMemcpy(front.data(), base_, kGuardBytes, cudaMemcpyDeviceToHost));
  TAILOR_CUDA_CHECK(
      cudaMemcpy(back.data(), base_ + kGuardBytes + bytes, kGuardBytes, cudaMemcpyDeviceToHost));
  for (std::size_t i = 0; i < kGuardBytes; ++i)
    if (front[i] != kGuardByte || back[i] != kGuardByte) return false;
  return true;
}

double rel_error(const std::vector<float>& got, const std::vector<float>& want) {
  EXPECT_EQ(got.size(), want.size());
  double diff = 0.0;
  double norm = 0.0;
  for (std::size_t i = 0; i < got.size() && i < want.size(); ++i) {
    const double d = static_cast<double>(got[i]) - static_cast<double>(want[i]);
    diff += d * d;
    norm += static_cast<double>(want[i]) * static_cast<double>(want[i]);
  }
  return norm > 0.0 ? std::sqrt(diff / norm) : std::sqrt(diff);
}

double rel_error(const std::vector<double>& got, const std::vector<double>& want) {
  EXPECT_EQ(got.size(), want.size());
  long double diff = 0.0L;
  long double norm = 0.0L;
  for (std::size_t i = 0; i < got.size() && i < want.size(); ++i) {
    const long double d = static_cast<long double>(got[i]) - static_cast<long double>(want[i]);
    diff += d * d;
    norm += static_cast<long double>(want[i]) * static_cast<long double>(want[i]);
  }
  return static_cast<double>(norm > 0.0L ? std::sqrt(diff / norm) : std::sqrt(diff));
}

bool all_finite(const std::vector<float>& v) {
  for (float x : v)
    if (!std::isfinite(x)) return false;
  return true;
}

double tolerance(DType storage) { return storage == DType::kF32 ? 1e-5 : 1e-2; }

void expect_matches(const char* what, const DeviceTensor& got, const std::vector<float>& want,
                    double tol) {
  const std::vector<float> g = got.to_f32();
  EXPECT_TRUE(all_finite(g)) << what << ": NaN or Inf in the GPU result";
  EXPECT_TRUE(all_finite(want)) << what << ": NaN or Inf in the CPU reference";
  EXPECT_LT(rel_error(g, want), tol) << what;
  EXPECT_TRUE(got.guards_intact()) << what << ": written out of bounds";
}

std::vector<float> random_normal(std::int64_t n, std::uint64_t seed, std::uint64_t stream,
                                 double sigma) {
  const CounterRng rng(seed, stream);
  std::vector<float> v(static_cast<std::size_t>(n));
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(sigma * rng.normal(i));
  return v;
}

std::vector<float> random_uniform(std::int64_t n, std::uint64_t seed, std::uint64_t stream,
                                  double lo, double hi) {
  const CounterRng rng(seed, stream);
  std::vector<float> v(static_cast<std::size_t>(n));
  for (std::size_t i = 0; i < v.size(); ++i)
    v[i] = static_cast<float>(lo + (hi - lo) * rng.uniform(i));
  return v;
}

std::vector<std::int32_t> random_ints(std::int64_t n, std::uint64_t seed, std::uint64_t stream,
                                      std::int64_t lo, std::int64_t hi) {
  const CounterRng rng(seed, stream);
  std::vector<std::int32_t> v(static_cast<std::size_t>(n));
  for (std::size_t i = 0; i < v.size(); ++i)
    v[i] = static_cast<std::int32_t>(
        lo + static_cast<std::int64_t>(rng.below(i, static_cast<std::uint64_t>(hi - lo))));
  return v;
}

void round_for(DType storage, std::vector<float>& v) {
  if (storage != DType::kBF16) return;
  for (float& x : v) x = round_to_bf16(x);
}

backend::Tensor cpu_view(std::vector<float>& v, Shape shape) {
  TAILOR_ASSERT(shape.numel() == static_cast<std::int64_t>(v.size()), "view {} of {} values",
                shape.str(), v.size());
  return backend::Tensor{v.data(), DType::kF32, shape, backend::Device::kCpu};
}

backend::Tensor cpu_view(std::vector<std::int32_t>& v, Shape shape) {
  TAILOR_ASSERT(shape.numel() == static_cast<std::int64_t>(v.size()), "view {} of {} values",
                shape.str(), v.size());
  return backend::Tensor{v.data(), DType::kI32, shape, backend::Device::kCpu};
}

backend::Tensor cpu_absent() { return backend::Tensor{}; }

backend::CpuOps& cpu_ops() {
  static backend::CpuOps ops(2);
  return ops;
}

void sync_device() { TAILOR_CUDA_CHECK(cudaDeviceSynchronize()); }

std::string dtype_label(DType storage) { return storage == DType::kF32 ? "f32" : "bf16"; }

}  // namespace tailor::testing
