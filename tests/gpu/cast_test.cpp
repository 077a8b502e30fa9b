// The bf16 cast kernels against the CPU reference conversion (core/dtype.h), bit for bit, over
// ordinary values, ties, subnormals, infinities and NaN.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "core/dtype.h"
#include "core/rng.h"
#include "gpu_test_util.h"
#include "kernels/cast.cuh"
#include "kernels/cuda_check.cuh"

namespace tailor {
namespace {

TEST(CastKernel, MatchesCpuReferenceBitForBit) {
  TAILOR_REQUIRE_GPU_OR_SKIP();
  std::vector<float> src;
  const CounterRng rng(1, 2);
  for (int i = 0; i < 100000; ++i) {
    std::uint32_t bits = rng.bits(static_cast<std::uint64_t>(i));
    float f;
    std::memcpy(&f, &bits, 4);
    src.push_back(f);  // every bit pattern: NaNs, infinities, subnormals, ties
  }
  src.push_back(1.0f + std::ldexp(1.0f, -8));
  src.push_back(std::numeric_limits<float>::max());
  src.push_back(-0.0f);
  const auto n = static_cast<std::int64_t>(src.size());
  float* d_src = nullptr;
  std::uint16_t* d_bf = nullptr;
  float* d_back = nullptr;
  TAILOR_CUDA_CHECK(cudaMalloc(&d_src, src.size() * 4));
  TAILOR_CUDA_CHECK(cudaMalloc(&d_bf, src.size() * 2));
  TAILOR_CUDA_CHECK(cudaMalloc(&d_back, src.size() * 4));
  TAILOR_CUDA_CHECK(cudaMemcpy(d_src, src.data(), src.size() * 4, cudaMemcpyHostToDevice));
  kernels::cast_f32_to_bf16(d_src, d_bf, n, nullptr);
  kernels::cast_bf16_to_f32(d_bf, d_back, n, nullptr);
  std::vector<std::uint16_t> bf(src.size());
  std::vector<float> back(src.size());
  TAILOR_CUDA_CHECK(cudaMemcpy(bf.data(), d_bf, bf.size() * 2, cudaMemcpyDeviceToHost));
  TAILOR_CUDA_CHECK(cudaMemcpy(back.data(), d_back, back.size() * 4, cudaMemcpyDeviceToHost));
  cudaFree(d_src);
  cudaFree(d_bf);
  cudaFree(d_back);
  for (std::size_t i = 0; i < src.size(); ++i) {
    const BF16 ref = float_to_bf16(src[i]);
    if (std::isnan(src[i])) {
      ASSERT_TRUE(std::isnan(back[i])) << i;  // NaN payloads may differ; NaN-ness may not
      continue;
    }
    ASSERT_EQ(bf[i], ref.bits) << "element " << i << " value " << src[i];
    ASSERT_EQ(back[i], bf16_to_float(ref));
  }
}

}  // namespace
}  // namespace tailor
