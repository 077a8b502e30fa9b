#include <atomic>
#include <cstring>
#include <new>

#include "backend/tensor.h"

namespace tailor::backend {
namespace {
constexpr std::align_val_t kAlign{64};
std::atomic<DeviceMemory*> g_device_memory{nullptr};
}  // namespace

void set_device_memory(DeviceMemory* memory) noexcept { g_device_memory.store(memory); }

DeviceMemory& device_memory() {
  DeviceMemory* m = g_device_memory.load();
  TAILOR_ASSERT(m != nullptr, "device memory used before a device backend was created");
  return *m;
}

bool has_device_memory() noexcept { return g_device_memory.load() != nullptr; }

void copy_bytes(const Tensor& dst, const Tensor& src) {
  TAILOR_ASSERT(dst.bytes() == src.bytes(), "copy_bytes: {} into {}", src.str(), dst.str());
  const std::size_t n = dst.bytes();
  if (n == 0 || dst.data == src.data) return;
  const bool d_host = dst.device == Device::kCpu, s_host = src.device == Device::kCpu;
  if (d_host && s_host) {
    std::memmove(dst.data, src.data, n);
  } else if (d_host) {
    device_memory().to_host(dst.data, src.data, n);
  } else if (s_host) {
    device_memory().from_host(dst.data, src.data, n);
  } else {
    device_memory().on_device(dst.data, src.data, n);
  }
}

Buffer::Buffer(DType dtype, Shape shape, Device device)
    : dtype_(dtype), shape_(shape), device_(device) {
  bytes_ = static_cast<std::size_t>(shape.numel()) * dtype_size(dtype);
  if (bytes_ == 0) return;
  if (device == Device::kCuda) {
    DeviceMemory& m = device_memory();
    data_ = m.allocate(bytes_);
    try {
      m.zero(data_, bytes_);
    } catch (...) {
      m.release(data_);
      throw;
    }
    return;
  }
  try {
    data_ = ::operator new(bytes_, kAlign);
  } catch (const std::bad_alloc&) {
    throw_runtime_error("out of host memory allocating {} bytes for a {}{} tensor", bytes_,
                        dtype_name(dtype), shape.str());
  }
  std::memset(data_, 0, bytes_);
}

Buffer::~Buffer() { release(); }

void Buffer::release() noexcept {
  if (data_ != nullptr) {
    if (device_ == Device::kCuda) {
      if (DeviceMemory* m = g_device_memory.load()) m->release(data_);
    } else {
      ::operator delete(data_, kAlign);
    }
  }
  data_ = nullptr;
  bytes_ = 0;
}

Buffer::Buffer(Buffer&& o) noexcept
    : data_(o.data_), bytes_(o.bytes_), dtype_(o.dtype_), shape_(o.shape_), device_(o.device_) {
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
    device_ = o.device_;
    o.data_ = nullptr;
    o.bytes_ = 0;
  }
  return *this;
}

}  // namespace tailor::backend
