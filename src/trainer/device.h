// Which backend a run computes on, from runtime.device and runtime.dtype.
//
//   runtime.device: auto  -> CUDA when this build has it and a GPU is visible, else the CPU
//   runtime.dtype:  auto  -> bf16 on CUDA (f32 master weights), f32 on the CPU
//
// A rank picks its GPU from its local rank (OMPI_COMM_WORLD_LOCAL_RANK, SLURM_LOCALID, modulo the
// visible devices; launch/bind-gpu.sh narrows CUDA_VISIBLE_DEVICES to one instead). The testing
// hook TAILOR_EMULATE_CUDA=1 stands the CPU emulation of the device (emulated_device_ops.h) in for
// a GPU.
#pragma once

#include <memory>
#include <string>

#include "backend/attention_dims.h"
#include "backend/ops.h"
#include "comm/process_grid.h"
#include "config/config.h"

namespace tailor::trainer {

// The compute dtype of a model on `device` under runtime.dtype: f32 or f64 on the CPU (a bf16
// config is computed in f32 there: loading bf16 tensors widens them exactly), bf16 or f32 on CUDA.
[[nodiscard]] DType compute_dtype(const config::RuntimeConfig& r, backend::Device device);

// The backend of a training run. UserError when runtime.device is cuda and no GPU is visible,
// or runtime.dtype cannot run on the device picked.
[[nodiscard]] std::unique_ptr<backend::Ops> make_ops(const config::RuntimeConfig& r, int threads,
                                                     const std::string& where);

// Communicators for device tensors: the model's tensor-parallel group and the optimizer's
// data-parallel group. NCCL when the backend is a real GPU and every rank of the job has a GPU of
// its own (ranks per node <= visible GPUs, agreed over the world); otherwise the grid's groups
// behind a StagedCommunicator (device tensors staged through host memory by the backend's
// DeviceMemory). Null on the CPU, where the grid's groups serve. Collective over the world.
struct DeviceComms {
  std::unique_ptr<comm::Communicator> tp, dp;
  std::string describe;  // "NCCL ..." or "MPI (device tensors staged through host memory)"
};
[[nodiscard]] DeviceComms device_communicators(backend::Ops& ops, comm::ProcessGrid& grid);

// The attention a run computes with (runtime.attention, docs/gpu.md), for the model's attention
// on this rank (`d`: micro-batch rows, sequence length, this rank's query and KV heads, head dim;
// storage `dtype`). Sets the CUDA backend's path (CudaOps::set_attention_path) and returns the
// run-log line: "attention: cudnn (fused SDPA; cuDNN 9.19.0)" or "attention: tailor kernels
// (<reason>)". UserError at `where` when runtime.attention is cudnn and cuDNN cannot run it
// (no cuDNN in this build, the CPU or the emulated device, f32, a shape cuDNN refuses: with
// cudnn the plans for `d` are built here; with auto only the rules are checked and the first
// call builds them).
[[nodiscard]] std::string select_attention(backend::Ops& ops, const config::RuntimeConfig& r,
                                           DType dtype, const backend::AttentionDims& d,
                                           const std::string& where);

// GPUs this process can use (0 in a build without CUDA or without a driver; 1 under emulation).
[[nodiscard]] int visible_gpus();

}  // namespace tailor::trainer
