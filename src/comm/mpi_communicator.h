// Communicator over MPI (host memory). Owns its MPI_Comm (freed on destruction unless it is
// MPI_COMM_WORLD). Every MPI call is checked; a failure is a RuntimeError naming the call.
#pragma once

#include <memory>

#include <mpi.h>

#include "comm/communicator.h"

namespace tailor::comm {

class MpiCommunicator final : public Communicator {
 public:
  // Wraps `comm`; takes ownership unless it is MPI_COMM_WORLD.
  explicit MpiCommunicator(MPI_Comm comm);
  ~MpiCommunicator() override;
  MpiCommunicator(const MpiCommunicator&) = delete;
  MpiCommunicator& operator=(const MpiCommunicator&) = delete;

  [[nodiscard]] int rank() const noexcept override { return rank_; }
  [[nodiscard]] int size() const noexcept override { return size_; }
  [[nodiscard]] std::string describe() const override;
  void all_reduce(const backend::Tensor& x, ReduceOp op) override;
  void reduce_scatter(const backend::Tensor& in, const backend::Tensor& out) override;
  void all_gather(const backend::Tensor& in, const backend::Tensor& out) override;
  void broadcast(const backend::Tensor& x, int root) override;
  void barrier() override;
  [[nodiscard]] std::unique_ptr<Communicator> split(int color, int key) override;

 private:
  MPI_Comm comm_;
  int rank_ = 0;
  int size_ = 1;
};

// MPI_Init_thread / MPI_Finalize for the process (RAII). Only constructed when the process was
// started by an MPI launcher (see launched_by_mpi()).
class MpiRuntime {
 public:
  MpiRuntime(int* argc, char*** argv);
  ~MpiRuntime();
  MpiRuntime(const MpiRuntime&) = delete;
  MpiRuntime& operator=(const MpiRuntime&) = delete;
  [[nodiscard]] std::unique_ptr<Communicator> world() const;
};

// True when the environment shows an MPI launcher (mpirun/mpiexec, srun with PMI/PMIx).
[[nodiscard]] bool launched_by_mpi();
// Ends every rank of the job with `code` (MPI_Abort). Only valid after MPI_Init.
[[noreturn]] void abort_job(int code);

}  // namespace tailor::comm
