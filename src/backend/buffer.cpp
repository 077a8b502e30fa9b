// Buffer (tensor.h) and DeviceMemory::copy_bytes (device_memory.h).
#include <cstring>
#include <new>

#include "backend/tensor.h"

namespace tailor::backend {
namespace {
constexpr std::align_val_t kAlign{64};
}  // namespace

void DeviceMemory::copy_bytes(const Tensor& dst, const Tensor& src) {
  TAILOR_ASSERT(dst.bytes() == src.bytes(), "copy_bytes: {} into {}", src.str(), dst.str());
  const std::size_t n = dst.bytes();
  if (n == 0 || dst.data == src.data) return;
  const bool d_host = dst.device == Device::kCpu, s_host = src.device == Device::kCpu;
  if (d_host && s_host) {
    std::memmove(dst.data, src.data, n);
  } else if (d_host) {
    to_host(dst.data, src.data, n);
  } else if (s_host) {
    from_host(dst.data, src.data, n);
  } else {
    on_device(dst.data, src.data, n);
  }
}

Buffer::Buffer(DType dtype, Shape shape) : dtype_(dtype), shape_(shape) {
  bytes_ = static_cast<std::size_t>(shape.numel()) * dtype_size(dtype);
  if (bytes_ == 0) return;
  try {
    data_ = ::operator new(bytes_, kAlign);
  } catch (const std::bad_alloc&) {
    throw_runtime_error("out of host memory allocating {} bytes for a {}{} tensor", bytes_,
                        dtype_name(dtype), shape.str());
  }
  std::memset(data_, 0, bytes_);
}

Buffer::Buffer(DType dtype, Shape shape, DeviceMemory& memory)
    : dtype_(dtype), shape_(shape), memory_(&memory) {
  bytes_ = static_cast<std::size_t>(shape.numel()) * dtype_size(dtype);
  if (bytes_ == 0) return;
  data_ = memory.allocate(bytes_);
  try {
    memory.zero(data_, bytes_);
  } catch (...) {
    memory.release(data_);
    data_ = nullptr;
    throw;
  }
}

Buffer::~Buffer() { release(); }

void Buffer::release() noexcept {
  if (data_ != nullptr) {
    if (memory_ != nullptr) {
      memory_->release(data_);
    } else {
      ::operator delete(data_, kAlign);
    }
  }
  data_ = nullptr;
  bytes_ = 0;
}

Buffer::Buffer(Buffer&& o) noexcept
    : data_(o.data_), bytes_(o.bytes_), dtype_(o.dtype_), shape_(o.shape_), memory_(o.memory_) {
  o.data_ = nullptr;
  o.bytes_ = 0;
}

Buffer& Buffer::operator=(Buffer&& o) noexcept {
  if (this != &o) {
    release();
    data_ = o.data_;
    bytes_ = o.bytes_;
    dtype_ = o.dtype_;
    shape_ = o.shape_;
    memory_ = o.memory_;
    o.data_ = nullptr;
    o.bytes_ = 0;
  }
  return *this;
}

}  // namespace tailor::backend
