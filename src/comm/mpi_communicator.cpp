#include "comm/mpi_communicator.h"
#include "core/environment.h"

#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

#include "backend/host_convert.h"

namespace tailor::comm {
namespace {

void check(int rc, const char* call) {
  if (rc != MPI_SUCCESS) {
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    throw_runtime_error("MPI call {} failed: {}", call, std::string(msg, static_cast<std::size_t>(len)));
  }
}
#define TAILOR_MPI_CHECK(call) check((call), #call)

MPI_Datatype mpi_type(DType t) {
  switch (t) {
    case DType::kF32: return MPI_FLOAT;
    case DType::kF64: return MPI_DOUBLE;
    case DType::kI32: return MPI_INT32_T;
    default: break;
  }
  TAILOR_ASSERT(false, "MPI collectives do not support {}", dtype_name(t));
  return MPI_DATATYPE_NULL;
}

int count(const backend::Tensor& t) {
  TAILOR_ASSERT(t.numel() <= static_cast<std::int64_t>(INT32_MAX), "collective of {} elements", t.numel());
  TAILOR_ASSERT(t.device == backend::Device::kCpu, "MPI collectives take host tensors");
  return static_cast<int>(t.numel());
}

// A host tensor MPI can reduce standing for host tensor `t`: t itself when it is f32, f64 or i32;
// for bf16 an f32 copy (so that sums are formed in f32 and rounded once), which store() rounds
// back. Device tensors reach MPI staged by a StagedCommunicator.
class HostStage {
 public:
  HostStage(const backend::Tensor& t, bool load) : t_(t) {
    TAILOR_ASSERT(t.device == backend::Device::kCpu,
                  "MPI collectives take host tensors (device ones through a StagedCommunicator): {}",
                  t.str());
    if (t.dtype != DType::kBF16) {
      host_ = t;
      return;
    }
    wide_ = backend::Buffer(DType::kF32, t.shape);
    host_ = wide_.tensor();
    if (load) backend::convert_host(wide_.data(), DType::kF32, t.data, DType::kBF16, 0, t.numel());
  }
  [[nodiscard]] const backend::Tensor& host() const noexcept { return host_; }
  void store() {
    if (!wide_.empty())
      backend::convert_host(t_.data, DType::kBF16, wide_.data(), DType::kF32, 0, t_.numel());
  }

 private:
  backend::Tensor t_, host_;
  backend::Buffer wide_;
};

}  // namespace

MpiCommunicator::MpiCommunicator(MPI_Comm comm) : comm_(comm) {
  TAILOR_MPI_CHECK(MPI_Comm_rank(comm_, &rank_));
  TAILOR_MPI_CHECK(MPI_Comm_size(comm_, &size_));
  // Errors come back as codes (checked above) instead of aborting inside MPI.
  TAILOR_MPI_CHECK(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN));
}

MpiCommunicator::~MpiCommunicator() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized && comm_ != MPI_COMM_WORLD && comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
}

std::string MpiCommunicator::describe() const { return fmt::format("MPI, {} ranks", size_); }

void MpiCommunicator::all_reduce(const backend::Tensor& x, ReduceOp op) {
  HostStage s(x, true);
  const backend::Tensor& h = s.host();
  TAILOR_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, h.data, count(h), mpi_type(h.dtype),
                                 op == ReduceOp::kSum ? MPI_SUM : MPI_MAX, comm_));
  s.store();
}

void MpiCommunicator::reduce_scatter(const backend::Tensor& in, const backend::Tensor& out) {
  TAILOR_ASSERT(in.numel() == out.numel() * size_ && in.dtype == out.dtype,
                "reduce_scatter: {} elements in, {} out, {} ranks", in.numel(), out.numel(), size_);
  HostStage si(in, true), so(out, false);
  const backend::Tensor &hi = si.host(), &ho = so.host();
  TAILOR_MPI_CHECK(MPI_Reduce_scatter_block(hi.data, ho.data, count(ho), mpi_type(hi.dtype),
                                            MPI_SUM, comm_));
  so.store();
}

void MpiCommunicator::all_gather(const backend::Tensor& in, const backend::Tensor& out) {
  TAILOR_ASSERT(out.numel() == in.numel() * size_ && in.dtype == out.dtype,
                "all_gather: {} elements in, {} out, {} ranks", in.numel(), out.numel(), size_);
  // Staged tensors are copies: `in` is read before `out` is written, so in place is fine too.
  HostStage si(in, true), so(out, false);
  const backend::Tensor &hi = si.host(), &ho = so.host();
  const bool in_place = static_cast<const char*>(hi.data) ==
                        static_cast<const char*>(ho.data) + hi.bytes() * static_cast<std::size_t>(rank_);
  TAILOR_MPI_CHECK(MPI_Allgather(in_place ? MPI_IN_PLACE : hi.data, count(hi), mpi_type(hi.dtype),
                                 ho.data, count(hi), mpi_type(hi.dtype), comm_));
  so.store();
}

void MpiCommunicator::broadcast(const backend::Tensor& x, int root) {
  HostStage s(x, true);
  const backend::Tensor& h = s.host();
  TAILOR_MPI_CHECK(MPI_Bcast(h.data, count(h), mpi_type(h.dtype), root, comm_));
  s.store();
}

void MpiCommunicator::barrier() { TAILOR_MPI_CHECK(MPI_Barrier(comm_)); }

std::unique_ptr<Communicator> MpiCommunicator::split(int color, int key) {
  MPI_Comm sub = MPI_COMM_NULL;
  TAILOR_MPI_CHECK(MPI_Comm_split(comm_, color, key, &sub));
  return std::make_unique<MpiCommunicator>(sub);
}

MpiRuntime::MpiRuntime(int* argc, char*** argv) {
  int provided = 0;
  TAILOR_MPI_CHECK(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided));
}

MpiRuntime::~MpiRuntime() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

std::unique_ptr<Communicator> MpiRuntime::world() const {
  return std::make_unique<MpiCommunicator>(MPI_COMM_WORLD);
}

bool launched_by_mpi() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "PMI_RANK", "MPI_LOCALNRANKS"})
    if (env::is_set(v)) return true;
  return false;
}

void abort_job(int code) {
  MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);  // MPI_Abort does not return; this satisfies [[noreturn]].
}

}  // namespace tailor::comm
