// Communicator over NCCL: collectives on device memory, on a stream of their own, ordered with
// the compute stream by events (no host synchronization):
//
//   compute stream: ... producer op ... [record e1]              [wait e2] ... consumer op ...
//   NCCL stream:                         [wait e1] NCCL call [record e2]
//
// So a collective sees everything queued on the compute stream before it, and everything queued
// after it sees its result; the host returns at once. barrier() (and a collective on host tensors,
// see below) waits for completion.
//
// Types: f32, f64, i32 and bf16 (NCCL reduces bf16 in bf16); ops: sum and max.
// Device tensors are the normal case. Host tensors (what Communicator's scalar conveniences such
// as all_reduce_sum(double) pass) are staged through a device buffer and the call blocks; the two
// tensors of reduce_scatter / all_gather must be on the same side.
//
// Determinism: NCCL chooses its algorithm (ring, tree, ...) and protocol (LL, LL128, Simple) per
// call from the message size and topology, and different choices sum in different orders. For
// bitwise-reproducible runs pin them in the environment before the communicator is created, e.g.
// NCCL_ALGO=Ring NCCL_PROTO=Simple (ARCHITECTURE.md, Determinism; the launch scripts set them in
// deterministic mode); describe() reports the values in force. With the same pins, world size,
// topology and NCCL version, a reduction is run-to-run identical.
//
// Created collectively from an existing (MPI) group; split() is ncclCommSplit, collective over
// this group. Not thread-safe; one NcclCommunicator per group per process, on the current device.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include <cuda_runtime.h>

#include "comm/communicator.h"

namespace tailor::comm {

class NcclCommunicator final : public Communicator {
 public:
  // Collective over `bootstrap` (every rank of it calls this): rank 0 makes the NCCL unique id,
  // `bootstrap` broadcasts it (as a host i32 tensor), every rank joins with ncclCommInitRank under
  // its bootstrap rank. The NCCL ranks equal the bootstrap ranks. `compute_stream` is the stream
  // the collectives are ordered with (CudaContext::stream()); the current device must be the
  // one that stream belongs to.
  [[nodiscard]] static std::unique_ptr<NcclCommunicator> create(Communicator& bootstrap,
                                                                cudaStream_t compute_stream);
  ~NcclCommunicator() override;
  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;
  NcclCommunicator(NcclCommunicator&&) = delete;
  NcclCommunicator& operator=(NcclCommunicator&&) = delete;

  [[nodiscard]] int rank() const noexcept override { return rank_; }
  [[nodiscard]] int size() const noexcept override { return size_; }
  // "NCCL 2.28.9, 8 ranks, device 0, NCCL_ALGO=Ring NCCL_PROTO=Simple" (or "(auto)").
  [[nodiscard]] std::string describe() const override;

  void all_reduce(const backend::Tensor& x, ReduceOp op) override;
  void reduce_scatter(const backend::Tensor& in, const backend::Tensor& out) override;
  // In place when `in` is this rank's slot of `out`.
  void all_gather(const backend::Tensor& in, const backend::Tensor& out) override;
  void broadcast(const backend::Tensor& x, int root) override;
  // Device tensors: queued on the NCCL stream after the compute stream's work so far; the compute
  // stream is not made to wait until wait() (or the next blocking collective).
  void all_reduce_start(const backend::Tensor& x, ReduceOp op) override;
  void wait() override;
  // An all-reduce of one element, then waits for the NCCL stream.
  void barrier() override;
  [[nodiscard]] std::unique_ptr<Communicator> split(int color, int key) override;

  [[nodiscard]] cudaStream_t nccl_stream() const noexcept;
  [[nodiscard]] cudaStream_t compute_stream() const noexcept { return compute_; }

 private:
  // The NCCL communicator, the NCCL stream, the two events and the staging buffer (nccl.h stays
  // out of this header, so that its users need no NCCL include path).
  struct Impl;
  NcclCommunicator(std::unique_ptr<Impl> impl, cudaStream_t compute_stream);

  // Orders the NCCL stream after the work queued so far on the compute stream.
  void begin();
  // Orders the compute stream after the work queued so far on the NCCL stream.
  void end();
  // A device buffer of at least `bytes` for staging host tensors (grow-only).
  void* staging(std::size_t bytes);

  std::unique_ptr<Impl> impl_;
  cudaStream_t compute_;
  int device_ = 0;
  bool pending_ = false;  // started collectives the compute stream does not wait for yet
  int rank_ = 0;
  int size_ = 1;
};

}  // namespace tailor::comm
