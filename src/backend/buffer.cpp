#include <cstring>
#include <new>

#include "backend/tensor.h"

namespace tailor::backend {
namespace {
constexpr std::align_val_t kAlign{64};
}

Buffer::Buffer(DType dtype, Shape shape, Device device)
    : dtype_(dtype), shape_(shape), device_(device) {
  TAILOR_ASSERT(device == Device::kCpu, "device buffers are allocated by the CUDA context");
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

Buffer::~Buffer() { release(); }

void Buffer::release() noexcept {
  if (data_ != nullptr) ::operator delete(data_, kAlign);
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
