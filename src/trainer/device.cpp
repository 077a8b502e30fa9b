#include "trainer/device.h"

#include <algorithm>
#include <cstdlib>

#include <fmt/format.h>

#include "backend/cpu/cpu_ops.h"
#include "backend/emulated_device_ops.h"
#include "comm/staged_communicator.h"
#include "core/environment.h"
#include "core/error.h"
#include "core/logging.h"

#ifdef TAILOR_HAVE_CUDA
#include "backend/cuda/context.h"
#include "backend/cuda/cuda_ops.h"
#include "comm/nccl_communicator.h"
#endif

namespace tailor::trainer {
namespace {

int local_rank() {
  return env::first_integer({"OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "LOCAL_RANK"}, 0)
      .value_or(0);
}

#ifdef TAILOR_HAVE_CUDA
backend::cuda::AttentionPath attention_path(config::RuntimeAttention a) {
  switch (a) {
    case config::RuntimeAttention::kCudnn:
      return backend::cuda::AttentionPath::kCudnn;
    case config::RuntimeAttention::kTailor:
      return backend::cuda::AttentionPath::kTailor;
    case config::RuntimeAttention::kAuto:
      break;
  }
  return backend::cuda::AttentionPath::kAuto;
}
#endif

}  // namespace

int visible_gpus() {
  if (backend::cuda_emulation_requested()) return 1;
#ifdef TAILOR_HAVE_CUDA
  return backend::cuda::CudaContext::device_count();
#else
  return 0;
#endif
}

DType compute_dtype(const config::RuntimeConfig& r, backend::Device device) {
  if (device == backend::Device::kCpu)
    return r.dtype == config::RuntimeDType::kF64 ? DType::kF64 : DType::kF32;
  return r.dtype == config::RuntimeDType::kF32 ? DType::kF32 : DType::kBF16;
}

std::unique_ptr<backend::Ops> make_ops(const config::RuntimeConfig& r, int threads,
                                       const std::string& where) {
  const int gpus = visible_gpus();
  const bool cuda = r.device == config::RuntimeDevice::kCuda ||
                    (r.device == config::RuntimeDevice::kAuto && gpus > 0);
  if (!cuda) {
    if (r.dtype == config::RuntimeDType::kBF16)
      throw_user_error(where, "runtime.dtype bf16 needs a GPU and none is visible (runtime.device "
                              "{}); use f32 on the CPU",
                       r.device);
    return std::make_unique<backend::CpuOps>(threads);
  }
  if (gpus == 0)
    throw_user_error(where, "runtime.device is cuda but no GPU is visible{}",
#ifdef TAILOR_HAVE_CUDA
                     " (check nvidia-smi and CUDA_VISIBLE_DEVICES)"
#else
                     " (this build has no CUDA backend)"
#endif
    );
  if (r.dtype == config::RuntimeDType::kF64)
    throw_user_error(where, "runtime.dtype f64 runs on the CPU only (runtime.device: cpu)");
  if (backend::cuda_emulation_requested()) {
    log::warn("TAILOR_EMULATE_CUDA=1: the CUDA backend is emulated on the CPU (a testing hook)");
    return std::make_unique<backend::EmulatedDeviceOps>(threads);
  }
#ifdef TAILOR_HAVE_CUDA
  auto gpu = std::make_unique<backend::cuda::CudaOps>(local_rank() % gpus);
  gpu->set_attention_path(attention_path(r.attention));
  return gpu;
#else
  (void)local_rank;
  TAILOR_ASSERT(false, "unreachable: no GPU without CUDA");
  return nullptr;
#endif
}

std::string select_attention(backend::Ops& ops, const config::RuntimeConfig& r, DType dtype,
                             const backend::AttentionDims& d, const std::string& where) {
  // The first reason that applies, in this order.
  std::string reason;
  if (r.attention == config::RuntimeAttention::kTailor)
    reason = "runtime.attention: tailor";
  else if (ops.device() == backend::Device::kCpu)
    reason = "the CPU backend";
#ifdef TAILOR_HAVE_CUDA
  auto* cuda = dynamic_cast<backend::cuda::CudaOps*>(&ops);
  if (cuda != nullptr) cuda->set_attention_path(attention_path(r.attention));
  if (reason.empty() && cuda == nullptr) reason = "the emulated device (TAILOR_EMULATE_CUDA=1)";
  // cudnn is a promise: build the plans now and refuse the run if cuDNN does. auto checks the
  // rules only, so a run whose calls all fall back (packed rows) compiles no cuDNN kernels; a
  // shape cuDNN refuses later is logged by the first call.
  if (reason.empty())
    reason = cuda->cudnn_attention_unsupported(
        d, dtype, /*build_plans=*/r.attention == config::RuntimeAttention::kCudnn);
  if (reason.empty())
    return fmt::format(
        "attention: cudnn (fused SDPA; {}); micro-batches whose rows pack several "
        "documents run tailor kernels",
        backend::cuda::CudaOps::cudnn_version());
#else
  (void)dtype;
  (void)d;
  if (reason.empty()) reason = "the emulated device (TAILOR_EMULATE_CUDA=1)";
#endif
  if (r.attention == config::RuntimeAttention::kCudnn)
    throw_user_error(where,
                     "runtime.attention is cudnn but cuDNN's fused attention cannot run "
                     "this model's attention here: {} (use auto or tailor)",
                     reason);
  return fmt::format("attention: tailor kernels ({})", reason);
}

DeviceComms device_communicators(backend::Ops& ops, comm::ProcessGrid& grid) {
  DeviceComms out;
  out.describe = "MPI";
  backend::DeviceMemory* memory = ops.device_memory();
  if (memory == nullptr) return out;
#ifdef TAILOR_HAVE_CUDA
  auto* cuda = dynamic_cast<backend::cuda::CudaOps*>(&ops);
  const int local_ranks =
      env::first_integer({"OMPI_COMM_WORLD_LOCAL_SIZE", "SLURM_NTASKS_PER_NODE", "LOCAL_WORLD_SIZE"},
                         1)
          .value_or(1);
  // NCCL refuses two ranks on one GPU; every rank must agree before any creates a communicator.
  const bool own_gpu = cuda != nullptr && local_ranks <= visible_gpus();
  const bool no_nccl = env::is_set("TAILOR_NO_NCCL");
  if (!grid.world().any(!own_gpu || no_nccl)) {
    out.tp = comm::NcclCommunicator::create(grid.tp(), cuda->stream());
    out.dp = comm::NcclCommunicator::create(grid.dp(), cuda->stream());
    out.describe = out.dp->describe();
    return out;
  }
#endif
  out.tp = std::make_unique<comm::StagedCommunicator>(grid.tp(), *memory);
  out.dp = std::make_unique<comm::StagedCommunicator>(grid.dp(), *memory);
  out.describe = "MPI (device tensors staged through host memory)";
  return out;
}

}  // namespace tailor::trainer
