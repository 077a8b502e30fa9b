// CudaContext: one GPU as the CUDA backend uses it. Picks the device, owns one non-blocking stream
// on which every op, copy, allocation and free is queued (so they are ordered without host
// synchronization), and a stream-ordered memory pool (cudaMallocFromPoolAsync / cudaFreeAsync)
// whose release threshold is "never": memory freed by one training step is reused by the next
// instead of going back to the driver.
//
// It is the backend::DeviceMemory of its CudaOps (Ops::device_memory()): the Buffers that CudaOps
// allocates, and the communicators' staging of them, go through it; it must outlive them.
//
// Debugging: with TAILOR_CUDA_SYNC=1 in the environment, check_launch() (which CudaOps calls after
// every op) synchronizes the stream and reports any asynchronous error at the op that caused it,
// and CudaOps checks device-side arguments (ids, targets, cache positions) on the host; otherwise
// check_launch() only checks cudaGetLastError and nothing waits.
//
// Not thread-safe: one host thread drives a context (one rank per GPU).
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include <cuda_runtime.h>

#include "backend/tensor.h"

namespace tailor::backend::cuda {

class CudaContext final : public backend::DeviceMemory {
 public:
  // Makes `device` current, creates the stream and the pool.
  explicit CudaContext(int device);
  ~CudaContext() override;
  CudaContext(const CudaContext&) = delete;
  CudaContext& operator=(const CudaContext&) = delete;
  CudaContext(CudaContext&&) = delete;
  CudaContext& operator=(CudaContext&&) = delete;

  // Number of visible CUDA devices; 0 (never an exception) without a driver or a GPU.
  [[nodiscard]] static int device_count() noexcept;

  [[nodiscard]] int device() const noexcept { return device_; }
  [[nodiscard]] cudaStream_t stream() const noexcept { return stream_.get(); }
  [[nodiscard]] const cudaDeviceProp& properties() const noexcept { return props_; }
  // "NVIDIA H100 80GB HBM3 (sm_90, 79.1 GiB), CUDA runtime 13.0, driver 13.0".
  [[nodiscard]] std::string describe() const;
  // TAILOR_CUDA_SYNC=1: synchronize and check after every op.
  [[nodiscard]] bool sync_mode() const noexcept { return sync_mode_; }

  // After each op: reports a failed launch at once; in sync mode also waits for the stream and
  // reports any error of the queued work.
  void check_launch() const;
  // Waits for all work queued on the stream; reports asynchronous errors.
  void synchronize() const;

  // ---- backend::DeviceMemory --------------------------------------------------------------
  // Stream-ordered allocation from the pool; on failure trims the pool's cached memory and
  // retries once, then throws RuntimeError naming the request and the device's free/total memory.
  [[nodiscard]] void* allocate(std::size_t bytes) override;
  void release(void* p) noexcept override;
  // High watermark of the pool's memory in use (cudaMemPoolAttrUsedMemHigh): the peak of the
  // Buffers' bytes, as torch.cuda.max_memory_allocated counts tensors; the cuBLASLt workspace
  // and kernel scratch (a few tens of MiB) come on top.
  [[nodiscard]] std::size_t peak_bytes() const override;
  void zero(void* p, std::size_t bytes) override;                        // async, on the stream
  void to_host(void* host, const void* device, std::size_t bytes) override;    // blocking
  void from_host(void* device, const void* host, std::size_t bytes) override;  // blocking
  // Async on the stream: ordered after every queued op and before every later one.
  void on_device(void* dst, const void* src, std::size_t bytes) override;

  // A context-owned device scratch of at least `bytes` (256-byte aligned; null for 0 bytes),
  // grow-only. Valid until the next scratch() call; only work queued on stream() may use it (a
  // regrowth frees the old block stream-ordered, after that work).
  [[nodiscard]] void* scratch(std::size_t bytes);

 private:
  struct StreamDeleter {
    void operator()(cudaStream_t s) const noexcept;
  };
  struct PoolDeleter {
    void operator()(cudaMemPool_t p) const noexcept;
  };

  [[noreturn]] void throw_oom(std::size_t bytes, cudaError_t err) const;

  int device_ = 0;
  cudaDeviceProp props_{};
  bool sync_mode_ = false;
  std::unique_ptr<CUmemPoolHandle_st, PoolDeleter> pool_;
  std::unique_ptr<CUstream_st, StreamDeleter> stream_;
  void* scratch_ = nullptr;
  std::size_t scratch_bytes_ = 0;
};

}  // namespace tailor::backend::cuda
