#include "core/environment.h"

#include <algorithm>
#include <array>
#include <cstdlib>

#include "core/error.h"

namespace tailor::env {
namespace {

constexpr std::array kVariables = {
    // What the launcher says about this process (mpirun, Slurm, torchrun-style launchers).
    Variable{"OMPI_COMM_WORLD_SIZE", "set by Open MPI's mpirun: this process is one rank of a job"},
    Variable{"PMI_SIZE", "set by PMI launchers (Slurm's srun, MPICH): one rank of a job"},
    Variable{"PMI_RANK", "set by PMI launchers: one rank of a job"},
    Variable{"PMIX_RANK", "set by PMIx launchers: one rank of a job"},
    Variable{"MPI_LOCALNRANKS", "set by MPICH's launcher: one rank of a job"},
    Variable{"OMPI_COMM_WORLD_LOCAL_RANK", "this rank's index on its node (GPU binding)"},
    Variable{"SLURM_LOCALID", "this rank's index on its node under Slurm (GPU binding)"},
    Variable{"LOCAL_RANK", "this rank's index on its node (other launchers)"},
    Variable{"OMPI_COMM_WORLD_LOCAL_SIZE",
             "ranks on this node: CPU threads per rank and whether each rank has a GPU of its own"},
    Variable{"SLURM_NTASKS_PER_NODE", "ranks on this node under Slurm"},
    Variable{"LOCAL_WORLD_SIZE", "ranks on this node (other launchers)"},
    // NCCL's own settings, read only to report them in the run log.
    Variable{"NCCL_ALGO", "NCCL's algorithm (reported in the log; pinned for determinism)"},
    Variable{"NCCL_PROTO", "NCCL's protocol (reported in the log; pinned for determinism)"},
    // Debugging switches.
    Variable{"TAILOR_CUDA_SYNC", "=1: synchronize and check after every CUDA op (slow; finds "
                                 "the failing op)"},
    Variable{"TAILOR_NO_NCCL", "set: device tensors travel over MPI, staged through host memory"},
    // Testing hooks (docs/checkpoints.md, docs/architecture.md).
    Variable{"TAILOR_EMULATE_CUDA", "=1: the CUDA backend emulated on the CPU (tests without a GPU)"},
    Variable{"TAILOR_FAULT_KILL_AFTER_STEP", "K[:rank]: SIGKILL that rank right after step K"},
    Variable{"TAILOR_FAULT_HANG_AT_STEP", "K[:rank]: that rank stops responding inside step K"},
    Variable{"TAILOR_FAULT_NAN_STEPS", "a,b,...: NaN gradients on the last rank at those steps"},
    Variable{"TAILOR_FAULT_SAVE", "point:rank or enospc:rank: a checkpoint save fails there"},
};

const Variable* find(std::string_view name) {
  const auto it = std::find_if(kVariables.begin(), kVariables.end(),
                               [&](const Variable& v) { return v.name == name; });
  return it == kVariables.end() ? nullptr : &*it;
}

const char* raw(std::string_view name) {
  TAILOR_ASSERT(find(name) != nullptr, "environment variable {} is not declared in core/environment",
                name);
  return std::getenv(std::string(name).c_str());
}

}  // namespace

std::span<const Variable> variables() { return kVariables; }

std::optional<std::string> get(std::string_view name) {
  const char* v = raw(name);
  if (v == nullptr || *v == '\0') return std::nullopt;
  return std::string(v);
}

bool is_one(std::string_view name) {
  const char* v = raw(name);
  return v != nullptr && std::string_view(v) == "1";
}

bool is_set(std::string_view name) { return raw(name) != nullptr; }

std::optional<int> first_integer(std::initializer_list<std::string_view> names, int min) {
  for (std::string_view n : names)
    if (const char* v = raw(n)) return std::max(min, std::atoi(v));
  return std::nullopt;
}

}  // namespace tailor::env
