// GPU tests skip themselves when no GPU is visible (CI has none), unless TAILOR_REQUIRE_GPU=1
// (set by benchmarks/gpu-check.sh), where a skip becomes a failure.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include <cuda_runtime.h>

namespace tailor::testing {

inline bool gpu_available() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

inline bool gpu_required() {
  const char* v = std::getenv("TAILOR_REQUIRE_GPU");
  return v != nullptr && std::string(v) == "1";
}

}  // namespace tailor::testing

#define TAILOR_REQUIRE_GPU_OR_SKIP()                                                 \
  do {                                                                               \
    if (!::tailor::testing::gpu_available()) {                                       \
      if (::tailor::testing::gpu_required()) FAIL() << "TAILOR_REQUIRE_GPU=1 but no GPU is visible"; \
      GTEST_SKIP() << "no GPU visible";                                              \
    }                                                                                \
  } while (0)
