// StagedCommunicator: collectives of device tensors over a communicator of host memory (MPI, or a
// group of one), each device tensor staged through a host buffer by the DeviceMemory of the
// backend that owns it. What device tensors travel over when NCCL cannot serve (ranks sharing a
// GPU, TAILOR_NO_NCCL=1, the emulated device); host tensors pass straight through.
//
// A staged input is copied to the host before the collective; a staged output is copied back
// after it. The copies are raw bytes: bf16 reaches the host communicator as bf16 (MPI sums it in
// f32 and rounds once).
#pragma once

#include <memory>
#include <string>

#include "comm/communicator.h"

namespace tailor::comm {

class StagedCommunicator final : public Communicator {
 public:
  // `host` and `memory` must outlive this communicator.
  StagedCommunicator(Communicator& host, backend::DeviceMemory& memory);
  // Owns `host` (what split() returns).
  StagedCommunicator(std::unique_ptr<Communicator> host, backend::DeviceMemory& memory);

  [[nodiscard]] int rank() const noexcept override { return host_->rank(); }
  [[nodiscard]] int size() const noexcept override { return host_->size(); }
  [[nodiscard]] std::string describe() const override;

  void all_reduce(const backend::Tensor& x, ReduceOp op) override;
  void reduce_scatter(const backend::Tensor& in, const backend::Tensor& out) override;
  void all_gather(const backend::Tensor& in, const backend::Tensor& out) override;
  void broadcast(const backend::Tensor& x, int root) override;
  void barrier() override { host_->barrier(); }
  [[nodiscard]] std::unique_ptr<Communicator> split(int color, int key) override;

 private:
  std::unique_ptr<Communicator> owned_;
  Communicator* host_;
  backend::DeviceMemory* memory_;
};

}  // namespace tailor::comm
