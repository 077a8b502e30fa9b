// Tensor: a non-owning view (pointer, dtype, shape, device) of contiguous row-major memory.
// Buffer: owning, 64-byte aligned storage on one device; move-only.
//
// Views never own memory, so passing them around costs nothing and never frees anything; whoever
// allocates a Buffer keeps it alive for as long as its views are used.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "backend/device_memory.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/shape.h"

namespace tailor::backend {

enum class Device : std::uint8_t { kCpu, kCuda };

[[nodiscard]] inline const char* device_name(Device d) noexcept {
  return d == Device::kCpu ? "cpu" : "cuda";
}

struct Tensor {
  void* data = nullptr;
  DType dtype = DType::kF32;
  Shape shape;
  Device device = Device::kCpu;

  [[nodiscard]] std::int64_t numel() const noexcept { return shape.numel(); }
  [[nodiscard]] std::size_t bytes() const noexcept {
    return static_cast<std::size_t>(numel()) * dtype_size(dtype);
  }
  [[nodiscard]] std::int64_t rows() const noexcept { return shape.rows(); }
  [[nodiscard]] std::int64_t cols() const noexcept { return shape.cols(); }

  // Typed pointer to host memory; asserts the dtype matches and that the tensor is on the CPU
  // (device memory is reached through Ops::copy only).
  template <typename T>
  [[nodiscard]] T* ptr() const {
    TAILOR_ASSERT(dtype == DTypeOf<T>::value, "tensor is {}, asked for {}", dtype_name(dtype),
                  dtype_name(DTypeOf<T>::value));
    TAILOR_ASSERT(device == Device::kCpu, "host access to device tensor {}", str());
    return static_cast<T*>(data);
  }

  // Same memory, another shape with the same element count.
  [[nodiscard]] Tensor view(Shape s) const {
    TAILOR_ASSERT(s.numel() == numel(), "view {} of tensor {}", s.str(), shape.str());
    return Tensor{data, dtype, s, device};
  }
  // Rows [begin, end) of the matrix view (rows(), cols()) as a 2-D tensor.
  [[nodiscard]] Tensor row_slice(std::int64_t begin, std::int64_t end) const {
    TAILOR_ASSERT(begin >= 0 && begin <= end && end <= rows(), "rows [{}, {}) of {}", begin, end,
                  rows());
    const std::size_t offset = static_cast<std::size_t>(begin * cols()) * dtype_size(dtype);
    return Tensor{static_cast<char*>(data) + offset, dtype, Shape{end - begin, cols()}, device};
  }
  // Elements [begin, end) of the flattened tensor as a 1-D tensor.
  [[nodiscard]] Tensor flat_slice(std::int64_t begin, std::int64_t end) const {
    TAILOR_ASSERT(begin >= 0 && begin <= end && end <= numel(), "elements [{}, {}) of {}", begin,
                  end, numel());
    return Tensor{static_cast<char*>(data) + static_cast<std::size_t>(begin) * dtype_size(dtype),
                  dtype, Shape{end - begin}, device};
  }
  [[nodiscard]] std::string str() const {
    return std::string(dtype_name(dtype)) + shape.str() + "@" + device_name(device);
  }
};

// Owning storage, zero-filled. Host memory comes from aligned operator new; device memory from the
// DeviceMemory given (a backend's, through Ops::alloc), which must outlive the Buffer.
class Buffer {
 public:
  Buffer() = default;
  // Host memory.
  Buffer(DType dtype, Shape shape);
  // Memory of the device `memory` belongs to.
  Buffer(DType dtype, Shape shape, DeviceMemory& memory);
  ~Buffer();
  Buffer(Buffer&& other) noexcept;
  Buffer& operator=(Buffer&& other) noexcept;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  [[nodiscard]] Tensor tensor() const noexcept { return Tensor{data_, dtype_, shape_, device()}; }
  [[nodiscard]] Tensor view(Shape s) const { return tensor().view(s); }
  [[nodiscard]] void* data() const noexcept { return data_; }
  [[nodiscard]] DType dtype() const noexcept { return dtype_; }
  [[nodiscard]] const Shape& shape() const noexcept { return shape_; }
  [[nodiscard]] std::int64_t numel() const noexcept { return shape_.numel(); }
  [[nodiscard]] bool empty() const noexcept { return data_ == nullptr; }
  [[nodiscard]] Device device() const noexcept {
    return memory_ == nullptr ? Device::kCpu : Device::kCuda;
  }
  template <typename T>
  [[nodiscard]] T* ptr() const { return tensor().ptr<T>(); }

 private:
  void release() noexcept;

  void* data_ = nullptr;
  std::size_t bytes_ = 0;
  DType dtype_ = DType::kF32;
  Shape shape_;
  DeviceMemory* memory_ = nullptr;  // the allocator of device memory; null for host memory
};

}  // namespace tailor::backend
