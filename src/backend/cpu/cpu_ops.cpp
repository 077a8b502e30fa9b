// CpuOps construction and self-description.
//
// The ThreadPool runs every op but GEMM; OpenBLAS runs GEMM with its own threads, pinned to the
// same count so that its (thread-count dependent) blocking is fixed for the life of the process
// (ARCHITECTURE.md, Determinism). The ops themselves live in one file per op family.
#include "backend/cpu/cpu_ops.h"

#include <string>

#include <cblas.h>
#include <fmt/format.h>

namespace tailor::backend {

// OpenBLAS runs one thread per call; gemm.cpp splits large GEMMs over this pool instead.
CpuOps::CpuOps(int threads) : pool_(threads) { openblas_set_num_threads(1); }

CpuOps::~CpuOps() = default;

std::string CpuOps::describe() const {
  return fmt::format("cpu, {} threads; BLAS: {}", pool_.size(), blas_description());
}

std::string blas_description() {
  std::string config = openblas_get_config();
  while (!config.empty() && config.back() == ' ') config.pop_back();
  const char* model = "unknown threading";
  switch (openblas_get_parallel()) {
    case 0:
      model = "sequential";
      break;
    case 1:
      model = "pthreads";
      break;
    case 2:
      model = "OpenMP";
      break;
    default:
      break;
  }
  return fmt::format("{} ({} build), {} thread per call, large GEMMs split over Tailor's pool",
                     config, model, openblas_get_num_threads());
}

}  // namespace tailor::backend
