// DeviceMemory: the memory of a device as the backend that owns the device provides it (the CUDA
// context, or the CPU emulation of a device in tests).
//
// Each device backend owns one and hands it out through Ops::device_memory(); a device Buffer
// keeps a pointer to the one that allocated it and gives its memory back there. So the backend
// must outlive every Buffer it allocated (as a std::pmr resource outlives its containers): the
// trainer and the CLI create the backend before the model and destroy it after. Host code that
// moves raw bytes between host and device memory (the communicators' staging) does it through
// the DeviceMemory of the backend that owns the device side.
#pragma once

#include <cstddef>

namespace tailor::backend {

struct Tensor;

class DeviceMemory {
 public:
  DeviceMemory() = default;
  virtual ~DeviceMemory() = default;
  DeviceMemory(const DeviceMemory&) = delete;
  DeviceMemory& operator=(const DeviceMemory&) = delete;

  // `bytes` > 0; throws RuntimeError when the device is out of memory.
  [[nodiscard]] virtual void* allocate(std::size_t bytes) = 0;
  virtual void release(void* p) noexcept = 0;
  virtual void zero(void* p, std::size_t bytes) = 0;
  // Blocking copies between host and device memory, ordered after all work queued so far.
  virtual void to_host(void* host, const void* device, std::size_t bytes) = 0;
  virtual void from_host(void* device, const void* host, std::size_t bytes) = 0;
  virtual void on_device(void* dst, const void* src, std::size_t bytes) = 0;
  // The most bytes of Buffers allocated at once so far (0 where not tracked).
  [[nodiscard]] virtual std::size_t peak_bytes() const { return 0; }

  // Copies dst.bytes() raw bytes from src (same size), each on the host or on this device;
  // blocking when either side is on the host.
  void copy_bytes(const Tensor& dst, const Tensor& src);
};

}  // namespace tailor::backend
