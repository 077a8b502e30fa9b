// Communicator: the collectives Tailor's SPMD ranks use, over typed tensors.
//
// Implementations: MpiCommunicator (MPI over host memory), SelfCommunicator (a group of one:
// every collective is a copy), StagedCommunicator (device tensors over one of those, staged
// through host memory by the backend's DeviceMemory) and, with the CUDA backend, NCCL. All ranks of a group must call the same collectives in the same order with the
// same shapes and dtypes. Reductions are sums (or max) over f32, f64, i32 and bf16 tensors (MPI
// sums bf16 in f32 and rounds once).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "backend/tensor.h"

namespace tailor::comm {

enum class ReduceOp { kSum, kMax };

class Communicator {
 public:
  virtual ~Communicator() = default;
  [[nodiscard]] virtual int rank() const noexcept = 0;
  [[nodiscard]] virtual int size() const noexcept = 0;
  [[nodiscard]] virtual std::string describe() const = 0;

  // x = op over ranks of x (in place).
  virtual void all_reduce(const backend::Tensor& x, ReduceOp op) = 0;
  // Starts the same all-reduce; x must not be read or written until wait(). Where collectives
  // run on a stream of their own (NCCL) this returns at once and work queued afterwards is not
  // ordered after the reduction until wait(), so it overlaps compute; elsewhere it is all_reduce.
  virtual void all_reduce_start(const backend::Tensor& x, ReduceOp op) { all_reduce(x, op); }
  // Orders all work queued after this call after every collective started so far.
  virtual void wait() {}
  // out (n / size elements) = rank's slice of the sum of in (n elements, n % size == 0).
  virtual void reduce_scatter(const backend::Tensor& in, const backend::Tensor& out) = 0;
  // out (size * n elements) = concatenation over ranks of in (n elements), in rank order.
  virtual void all_gather(const backend::Tensor& in, const backend::Tensor& out) = 0;
  // x = root's x.
  virtual void broadcast(const backend::Tensor& x, int root) = 0;
  virtual void barrier() = 0;
  // Splits this group: ranks with the same color form a new group, ordered by key.
  [[nodiscard]] virtual std::unique_ptr<Communicator> split(int color, int key) = 0;

  // Scalar conveniences (host values).
  double all_reduce_sum(double v);
  double all_reduce_max(double v);
  std::int64_t all_reduce_sum(std::int64_t v);
  bool any(bool v);  // logical OR over ranks
};

// A group of one rank.
class SelfCommunicator final : public Communicator {
 public:
  [[nodiscard]] int rank() const noexcept override { return 0; }
  [[nodiscard]] int size() const noexcept override { return 1; }
  [[nodiscard]] std::string describe() const override { return "single process"; }
  void all_reduce(const backend::Tensor&, ReduceOp) override {}
  void reduce_scatter(const backend::Tensor& in, const backend::Tensor& out) override;
  void all_gather(const backend::Tensor& in, const backend::Tensor& out) override;
  void broadcast(const backend::Tensor&, int) override {}
  void barrier() override {}
  [[nodiscard]] std::unique_ptr<Communicator> split(int, int) override;
};

}  // namespace tailor::comm
