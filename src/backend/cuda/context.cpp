#include "backend/cuda/context.h"
#include "core/environment.h"

#include <cstdint>
#include <cstdlib>
#include <limits>
#include <string_view>

#include <fmt/format.h>

#include "core/logging.h"
#include "kernels/cuda_check.cuh"

namespace tailor::backend::cuda {
namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
constexpr std::size_t kScratchGranule = std::size_t{1} << 20;  // scratch grows in whole MiB

std::string version_string(int v) { return fmt::format("{}.{}", v / 1000, (v % 1000) / 10); }

}  // namespace

void CudaContext::StreamDeleter::operator()(cudaStream_t s) const noexcept {
  (void)cudaStreamDestroy(s);
}

void CudaContext::PoolDeleter::operator()(cudaMemPool_t p) const noexcept {
  // Returns at once if allocations are still outstanding; the driver then frees the pool when
  // the last of them is freed.
  (void)cudaMemPoolDestroy(p);
}

int CudaContext::device_count() noexcept {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError();  // no driver / no device: not an error for the caller
    return 0;
  }
  return n;
}

CudaContext::CudaContext(int device) : device_(device) {
  const int count = device_count();
  if (count == 0) throw_runtime_error("CUDA backend: no CUDA device is visible");
  if (device < 0 || device >= count)
    throw_runtime_error("CUDA backend: device {} requested, {} visible", device, count);
  TAILOR_CUDA_CHECK(cudaSetDevice(device));
  TAILOR_CUDA_CHECK(cudaGetDeviceProperties(&props_, device));
  int pools_supported = 0;
  TAILOR_CUDA_CHECK(cudaDeviceGetAttribute(&pools_supported, cudaDevAttrMemoryPoolsSupported, device));
  if (pools_supported == 0)
    throw_runtime_error("CUDA backend: device {} ({}) has no stream-ordered memory pools", device,
                        props_.name);
  sync_mode_ = env::is_one("TAILOR_CUDA_SYNC");

  cudaMemPoolProps pool_props{};
  pool_props.allocType = cudaMemAllocationTypePinned;
  pool_props.handleTypes = cudaMemHandleTypeNone;
  pool_props.location.type = cudaMemLocationTypeDevice;
  pool_props.location.id = device;
  cudaMemPool_t pool = nullptr;
  TAILOR_CUDA_CHECK(cudaMemPoolCreate(&pool, &pool_props));
  pool_.reset(pool);
  // Keep freed memory cached in the pool (never give it back at a synchronization point): each
  // training step then reuses the previous step's blocks without calling into the driver.
  std::uint64_t threshold = std::numeric_limits<std::uint64_t>::max();
  TAILOR_CUDA_CHECK(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &threshold));

  cudaStream_t stream = nullptr;
  TAILOR_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  stream_.reset(stream);

  if (sync_mode_) log::info("CUDA backend: TAILOR_CUDA_SYNC=1, every op is synchronized and checked");
}

CudaContext::~CudaContext() {
  (void)cudaSetDevice(device_);
  if (scratch_ != nullptr) (void)cudaFreeAsync(scratch_, stream_.get());
  (void)cudaStreamSynchronize(stream_.get());
  (void)cudaGetLastError();
  // stream_ is destroyed before pool_ (reverse declaration order), both after the sync above.
}

std::string CudaContext::describe() const {
  int runtime = 0, driver = 0;
  (void)cudaRuntimeGetVersion(&runtime);
  (void)cudaDriverGetVersion(&driver);
  return fmt::format("{} (device {}, sm_{}{}, {:.1f} GiB), CUDA runtime {}, driver {}{}",
                     props_.name, device_, props_.major, props_.minor,
                     static_cast<double>(props_.totalGlobalMem) / kGiB, version_string(runtime),
                     version_string(driver), sync_mode_ ? ", TAILOR_CUDA_SYNC=1" : "");
}

void CudaContext::check_launch() const {
  TAILOR_CUDA_CHECK(cudaGetLastError());
  if (sync_mode_) TAILOR_CUDA_CHECK(cudaStreamSynchronize(stream_.get()));
}

void CudaContext::synchronize() const { TAILOR_CUDA_CHECK(cudaStreamSynchronize(stream_.get())); }

void CudaContext::throw_oom(std::size_t bytes, cudaError_t err) const {
  std::size_t free_bytes = 0, total_bytes = 0;
  if (cudaMemGetInfo(&free_bytes, &total_bytes) != cudaSuccess) (void)cudaGetLastError();
  std::uint64_t reserved = 0, used = 0;
  if (cudaMemPoolGetAttribute(pool_.get(), cudaMemPoolAttrReservedMemCurrent, &reserved) !=
          cudaSuccess ||
      cudaMemPoolGetAttribute(pool_.get(), cudaMemPoolAttrUsedMemCurrent, &used) != cudaSuccess)
    (void)cudaGetLastError();
  throw_runtime_error(
      "CUDA device {} ({}): out of memory allocating {} bytes ({:.3f} GiB): {}; device has {:.3f} "
      "GiB free of {:.3f} GiB; Tailor's pool holds {:.3f} GiB, {:.3f} GiB of it in use",
      device_, props_.name, bytes, static_cast<double>(bytes) / kGiB, cudaGetErrorName(err),
      static_cast<double>(free_bytes) / kGiB, static_cast<double>(total_bytes) / kGiB,
      static_cast<double>(reserved) / kGiB, static_cast<double>(used) / kGiB);
}

void* CudaContext::allocate(std::size_t bytes) {
  TAILOR_ASSERT(bytes > 0, "CudaContext::allocate: 0 bytes");
  void* p = nullptr;
  cudaError_t err = cudaMallocFromPoolAsync(&p, bytes, pool_.get(), stream_.get());
  if (err != cudaSuccess) {
    (void)cudaGetLastError();
    // The pool may cache blocks that other allocators (cuBLASLt, NCCL) or a larger request
    // cannot use: wait for pending frees, return the cache to the driver and retry once.
    TAILOR_CUDA_CHECK(cudaStreamSynchronize(stream_.get()));
    TAILOR_CUDA_CHECK(cudaMemPoolTrimTo(pool_.get(), 0));
    p = nullptr;
    err = cudaMallocFromPoolAsync(&p, bytes, pool_.get(), stream_.get());
    if (err != cudaSuccess) {
      (void)cudaGetLastError();
      throw_oom(bytes, err);
    }
  }
  return p;
}

void CudaContext::release(void* p) noexcept {
  if (p == nullptr) return;
  if (cudaFreeAsync(p, stream_.get()) != cudaSuccess) (void)cudaGetLastError();
}

std::size_t CudaContext::peak_bytes() const {
  std::uint64_t high = 0;  // the attribute is a cuuint64_t (64 bits)
  if (cudaMemPoolGetAttribute(pool_.get(), cudaMemPoolAttrUsedMemHigh, &high) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return static_cast<std::size_t>(high);
}

void CudaContext::zero(void* p, std::size_t bytes) {
  if (bytes == 0) return;
  TAILOR_CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, stream_.get()));
}

void CudaContext::to_host(void* host, const void* device, std::size_t bytes) {
  if (bytes == 0) return;
  TAILOR_CUDA_CHECK(cudaMemcpyAsync(host, device, bytes, cudaMemcpyDeviceToHost, stream_.get()));
  TAILOR_CUDA_CHECK(cudaStreamSynchronize(stream_.get()));
}

void CudaContext::from_host(void* device, const void* host, std::size_t bytes) {
  if (bytes == 0) return;
  TAILOR_CUDA_CHECK(cudaMemcpyAsync(device, host, bytes, cudaMemcpyHostToDevice, stream_.get()));
  // The host buffer may be freed or reused as soon as this returns.
  TAILOR_CUDA_CHECK(cudaStreamSynchronize(stream_.get()));
}

void CudaContext::on_device(void* dst, const void* src, std::size_t bytes) {
  if (bytes == 0 || dst == src) return;
  TAILOR_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream_.get()));
}

void* CudaContext::scratch(std::size_t bytes) {
  if (bytes <= scratch_bytes_) return scratch_;
  const std::size_t grown = (bytes + kScratchGranule - 1) / kScratchGranule * kScratchGranule;
  void* fresh = allocate(grown);  // before freeing the old block: a throw leaves it intact
  release(scratch_);              // stream-ordered: after the work queued on the old block
  scratch_ = fresh;
  scratch_bytes_ = grown;
  return scratch_;
}

}  // namespace tailor::backend::cuda
