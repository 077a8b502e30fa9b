#include "comm/nccl_communicator.h"
#include "core/environment.h"

#include <array>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>

#include <fmt/format.h>
#include <nccl.h>

#include "kernels/cuda_check.cuh"

namespace tailor::comm {
namespace {

[[noreturn]] void nccl_failure(ncclResult_t r, const char* call, ncclComm_t comm) {
  const char* last = ncclGetLastError(comm);
  int device = -1;
  (void)cudaGetDevice(&device);
  throw_runtime_error("NCCL call `{}` failed on device {}: {} ({})", call, device,
                      ncclGetErrorString(r),
                      last != nullptr && *last != '\0' ? last : "no further detail");
}

#define TAILOR_NCCL_CHECK(call, comm)                              \
  do {                                                             \
    const ncclResult_t tailor_nccl_rc_ = (call);                   \
    if (tailor_nccl_rc_ != ncclSuccess) nccl_failure(tailor_nccl_rc_, #call, (comm)); \
  } while (0)

ncclDataType_t nccl_type(DType t) {
  switch (t) {
    case DType::kF32: return ncclFloat32;
    case DType::kF64: return ncclFloat64;
    case DType::kI32: return ncclInt32;
    case DType::kBF16: return ncclBfloat16;
    case DType::kF16: return ncclFloat16;
  }
  TAILOR_ASSERT(false, "NCCL collectives do not support {}", dtype_name(t));
  return ncclFloat32;
}

ncclRedOp_t nccl_op(ReduceOp op) { return op == ReduceOp::kSum ? ncclSum : ncclMax; }

bool on_device(const backend::Tensor& t) { return t.device == backend::Device::kCuda; }

void check_tensor(const char* op, const backend::Tensor& t) {
  TAILOR_ASSERT(t.data != nullptr || t.numel() == 0, "{}: tensor {} has no data", op, t.str());
}

std::string env_or(const char* name, const char* fallback) {
  return env::get(name).value_or(fallback);
}

}  // namespace

struct NcclCommunicator::Impl {
  ncclComm_t comm = nullptr;
  cudaStream_t stream = nullptr;
  cudaEvent_t compute_done = nullptr;  // recorded on the compute stream, waited on by NCCL's
  cudaEvent_t nccl_done = nullptr;     // recorded on NCCL's stream, waited on by the compute one
  void* staging = nullptr;             // cudaMalloc'd, for host tensors
  std::size_t staging_bytes = 0;

  Impl() = default;
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  // Every field may still be null here (a constructor that failed half-way).
  ~Impl() {
    if (stream != nullptr) (void)cudaStreamSynchronize(stream);
    if (comm != nullptr) {
      // While an exception unwinds, peers may never reach their matching calls: abort instead
      // of the (possibly collective) orderly teardown.
      if (std::uncaught_exceptions() > 0) {
        (void)ncclCommAbort(comm);
      } else {
        (void)ncclCommDestroy(comm);
      }
    }
    if (staging != nullptr) (void)cudaFree(staging);
    if (nccl_done != nullptr) (void)cudaEventDestroy(nccl_done);
    if (compute_done != nullptr) (void)cudaEventDestroy(compute_done);
    if (stream != nullptr) (void)cudaStreamDestroy(stream);
    (void)cudaGetLastError();
  }

  // The stream and the events, once the communicator exists.
  void make_streams() {
    int least = 0, greatest = 0;
    TAILOR_CUDA_CHECK(cudaDeviceGetStreamPriorityRange(&least, &greatest));
    // Highest priority: a gradient reduction started during backward (all_reduce_start) should
    // not queue behind the backward kernels it overlaps.
    TAILOR_CUDA_CHECK(cudaStreamCreateWithPriority(&stream, cudaStreamNonBlocking, greatest));
    TAILOR_CUDA_CHECK(cudaEventCreateWithFlags(&compute_done, cudaEventDisableTiming));
    TAILOR_CUDA_CHECK(cudaEventCreateWithFlags(&nccl_done, cudaEventDisableTiming));
  }
};

NcclCommunicator::NcclCommunicator(std::unique_ptr<Impl> impl, cudaStream_t compute_stream)
    : impl_(std::move(impl)), compute_(compute_stream) {
  TAILOR_CUDA_CHECK(cudaGetDevice(&device_));
  TAILOR_NCCL_CHECK(ncclCommUserRank(impl_->comm, &rank_), impl_->comm);
  TAILOR_NCCL_CHECK(ncclCommCount(impl_->comm, &size_), impl_->comm);
}

NcclCommunicator::~NcclCommunicator() = default;

std::unique_ptr<NcclCommunicator> NcclCommunicator::create(Communicator& bootstrap,
                                                           cudaStream_t compute_stream) {
  static_assert(sizeof(ncclUniqueId) % sizeof(std::int32_t) == 0, "ncclUniqueId as i32 words");
  constexpr std::size_t kWords = sizeof(ncclUniqueId) / sizeof(std::int32_t);
  ncclUniqueId id{};
  if (bootstrap.rank() == 0) TAILOR_NCCL_CHECK(ncclGetUniqueId(&id), nullptr);
  std::array<std::int32_t, kWords> words{};
  std::memcpy(words.data(), &id, sizeof(id));
  const backend::Tensor t{words.data(), DType::kI32, Shape{static_cast<std::int64_t>(kWords)},
                          backend::Device::kCpu};
  bootstrap.broadcast(t, 0);
  std::memcpy(&id, words.data(), sizeof(id));

  auto impl = std::make_unique<Impl>();
  TAILOR_NCCL_CHECK(ncclCommInitRank(&impl->comm, bootstrap.size(), id, bootstrap.rank()),
                    nullptr);
  impl->make_streams();
  return std::unique_ptr<NcclCommunicator>(new NcclCommunicator(std::move(impl), compute_stream));
}

cudaStream_t NcclCommunicator::nccl_stream() const noexcept { return impl_->stream; }

std::string NcclCommunicator::describe() const {
  int v = 0;
  (void)ncclGetVersion(&v);
  return fmt::format("NCCL {}.{}.{}, {} ranks, device {}, NCCL_ALGO={} NCCL_PROTO={}", v / 10000,
                     (v / 100) % 100, v % 100, size_, device_, env_or("NCCL_ALGO", "(auto)"),
                     env_or("NCCL_PROTO", "(auto)"));
}

void NcclCommunicator::begin() {
  TAILOR_CUDA_CHECK(cudaEventRecord(impl_->compute_done, compute_));
  TAILOR_CUDA_CHECK(cudaStreamWaitEvent(impl_->stream, impl_->compute_done, 0));
}

void NcclCommunicator::end() {
  TAILOR_CUDA_CHECK(cudaEventRecord(impl_->nccl_done, impl_->stream));
  TAILOR_CUDA_CHECK(cudaStreamWaitEvent(compute_, impl_->nccl_done, 0));
  pending_ = false;  // the wait covers everything queued earlier on the NCCL stream
}

void NcclCommunicator::all_reduce_start(const backend::Tensor& x, ReduceOp op) {
  check_tensor("all_reduce_start", x);
  if (!on_device(x)) {
    all_reduce(x, op);
    return;
  }
  const auto count = static_cast<std::size_t>(x.numel());
  if (count == 0) return;
  begin();
  TAILOR_NCCL_CHECK(ncclAllReduce(x.data, x.data, count, nccl_type(x.dtype), nccl_op(op),
                                  impl_->comm, impl_->stream),
                    impl_->comm);
  pending_ = true;
}

void NcclCommunicator::wait() {
  if (!pending_) return;
  TAILOR_CUDA_CHECK(cudaEventRecord(impl_->nccl_done, impl_->stream));
  TAILOR_CUDA_CHECK(cudaStreamWaitEvent(compute_, impl_->nccl_done, 0));
  pending_ = false;
}

void* NcclCommunicator::staging(std::size_t bytes) {
  if (bytes <= impl_->staging_bytes) return impl_->staging;
  if (impl_->staging != nullptr) {
    TAILOR_CUDA_CHECK(cudaStreamSynchronize(impl_->stream));
    TAILOR_CUDA_CHECK(cudaFree(impl_->staging));
    impl_->staging = nullptr;
    impl_->staging_bytes = 0;
  }
  const std::size_t grown = (bytes + 4095) / 4096 * 4096;
  TAILOR_CUDA_CHECK(cudaMalloc(&impl_->staging, grown));
  impl_->staging_bytes = grown;
  return impl_->staging;
}

// Host tensors: staged through the device buffer on the NCCL stream, then waited for. Device
// tensors: the NCCL call between begin() and end().

void NcclCommunicator::all_reduce(const backend::Tensor& x, ReduceOp op) {
  check_tensor("all_reduce", x);
  const auto count = static_cast<std::size_t>(x.numel());
  if (count == 0) return;
  const ncclDataType_t type = nccl_type(x.dtype);
  if (on_device(x)) {
    begin();
    TAILOR_NCCL_CHECK(ncclAllReduce(x.data, x.data, count, type, nccl_op(op), impl_->comm,
                                    impl_->stream),
                      impl_->comm);
    end();
    return;
  }
  void* d = staging(x.bytes());
  cudaStream_t s = impl_->stream;
  TAILOR_CUDA_CHECK(cudaMemcpyAsync(d, x.data, x.bytes(), cudaMemcpyHostToDevice, s));
  TAILOR_NCCL_CHECK(ncclAllReduce(d, d, count, type, nccl_op(op), impl_->comm, s), impl_->comm);
  TAILOR_CUDA_CHECK(cudaMemcpyAsync(x.data, d, x.bytes(), cudaMemcpyDeviceToHost, s));
  TAILOR_CUDA_CHECK(cudaStreamSynchronize(s));
}

void NcclCommunicator::reduce_scatter(const backend::Tensor& in, const backend::Tensor& out) {
  check_tensor("reduce_scatter", in);
  check_tensor("reduce_scatter", out);
  TAILOR_ASSERT(in.numel() == out.numel() * size_ && in.dtype == out.dtype,
                "reduce_scatter: {} in, {} out, {} ranks", in.str(), out.str(), size_);
  TAILOR_ASSERT(on_device(in) == on_device(out), "reduce_scatter: {} and {} on different devices",
                in.str(), out.str());
  const auto count = static_cast<std::size_t>(out.numel());
  if (count == 0) return;
  const ncclDataType_t type = nccl_type(in.dtype);
  if (on_device(in)) {
    begin();
    TAILOR_NCCL_CHECK(ncclReduceScatter(in.data, out.data, count, type, ncclSum, impl_->comm,
                                        impl_->stream),
                      impl_->comm);
    end();
    return;
  }
  const std::size_t in_bytes = (in.bytes() + 255) / 256 * 256;
  auto* d = static_cast<char*>(staging(in_bytes + out.bytes()));
  cudaStream_t s = impl_->stream;
  TAILOR_CUDA_CHECK(cudaMemcpyAsync(d, in.data, in.bytes(), cudaMemcpyHostToDevice, s));
  TAILOR_NCCL_CHECK(ncclReduceScatter(d, d + in_bytes, count, type, ncclSum, impl_->comm, s),
                    impl_->comm);
  TAILOR_CUDA_CHECK(cudaMemcpyAsync(out.data, d + in_bytes, out.bytes(), cudaMemcpyDeviceToHost, s));
  TAILOR_CUDA_CHECK(cudaStreamSynchronize(s));
}

void NcclCommunicator::all_gather(const backend::Tensor& in, const backend::Tensor& out) {
  check_tensor("all_gather", in);
  check_tensor("all_gather", out);
  TAILOR_ASSERT(out.numel() == in.numel() * size_ && in.dtype == out.dtype,
                "all_gather: {} in, {} out, {} ranks", in.str(), out.str(), size_);
  TAILOR_ASSERT(on_device(in) == on_device(out), "all_gather: {} and {} on different devices",
                in.str(), out.str());
  const auto count = static_cast<std::size_t>(in.numel());
  if (count == 0) return;
  const ncclDataType_t type = nccl_type(in.dtype);
  if (on_device(in)) {
    // NCCL runs in place when in is this rank's slot of out, as here.
    begin();
    TAILOR_NCCL_CHECK(
        ncclAllGather(in.data, out.data, count, type, impl_->comm, impl_->stream), impl_->comm);
    end();
    return;
  }
  // Staged copies: in is read before out is written, so an in-place call is fine too.
  const std::size_t in_bytes = (in.bytes() + 255) / 256 * 256;
  auto* d = static_cast<char*>(staging(in_bytes + out.bytes()));
  cudaStream_t s = impl_->stream;
  TAILOR_CUDA_CHECK(cudaMemcpyAsync(d, in.data, in.bytes(), cudaMemcpyHostToDevice, s));
  TAILOR_NCCL_CHECK(ncclAllGather(d, d + in_bytes, count, type, impl_->comm, s), impl_->comm);
  TAILOR_CUDA_CHECK(cudaMemcpyAsync(out.data, d + in_bytes, out.bytes(), cudaMemcpyDeviceToHost, s));
  TAILOR_CUDA_CHECK(cudaStreamSynchronize(s));
}

void NcclCommunicator::broadcast(const backend::Tensor& x, int root) {
  check_tensor("broadcast", x);
  TAILOR_ASSERT(root >= 0 && root < size_, "broadcast: root {} of {} ranks", root, size_);
  const auto count = static_cast<std::size_t>(x.numel());
  if (count == 0) return;
  const ncclDataType_t type = nccl_type(x.dtype);
  if (on_device(x)) {
    begin();
    TAILOR_NCCL_CHECK(
        ncclBroadcast(x.data, x.data, count, type, root, impl_->comm, impl_->stream), impl_->comm);
    end();
    return;
  }
  void* d = staging(x.bytes());
  cudaStream_t s = impl_->stream;
  TAILOR_CUDA_CHECK(cudaMemcpyAsync(d, x.data, x.bytes(), cudaMemcpyHostToDevice, s));
  TAILOR_NCCL_CHECK(ncclBroadcast(d, d, count, type, root, impl_->comm, s), impl_->comm);
  TAILOR_CUDA_CHECK(cudaMemcpyAsync(x.data, d, x.bytes(), cudaMemcpyDeviceToHost, s));
  TAILOR_CUDA_CHECK(cudaStreamSynchronize(s));
}

void NcclCommunicator::barrier() {
  void* d = staging(sizeof(float));
  begin();
  TAILOR_CUDA_CHECK(cudaMemsetAsync(d, 0, sizeof(float), impl_->stream));
  TAILOR_NCCL_CHECK(ncclAllReduce(d, d, 1, ncclFloat32, ncclSum, impl_->comm, impl_->stream),
                    impl_->comm);
  TAILOR_CUDA_CHECK(cudaStreamSynchronize(impl_->stream));
}

std::unique_ptr<Communicator> NcclCommunicator::split(int color, int key) {
  TAILOR_ASSERT(color >= 0, "split: color {} (NCCL takes colors >= 0)", color);
  auto impl = std::make_unique<Impl>();
  // Collective over this group; the new communicator inherits this one's configuration.
  TAILOR_NCCL_CHECK(ncclCommSplit(impl_->comm, color, key, &impl->comm, nullptr), impl_->comm);
  TAILOR_ASSERT(impl->comm != nullptr, "split: NCCL gave no communicator for color {}", color);
  impl->make_streams();
  return std::unique_ptr<Communicator>(new NcclCommunicator(std::move(impl), compute_));
}

}  // namespace tailor::comm
