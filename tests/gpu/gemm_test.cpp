// cuBLASLt GEMM (src/backend/cuda/gemm.cpp) against CpuOps::gemm: every transpose combination,
// shapes from 1 x 1 x 1 to 256 x 512 x 128 with odd ones between, beta 0 (c starts as NaN and
// must not be read) and 1, alpha != 1, in f32 (tolerance 1e-5: CUBLAS_COMPUTE_32F, no TF32) and
// with bf16 operands writing bf16 or f32 (the CPU computes in f32 on the bf16-rounded inputs;
// tolerance 1e-2). Two runs, and a run of a second CublasLtGemm (a fresh heuristic query), give
// the same bits. Also: K == 0 (c = beta * c), M == 0, operands at 4- and 2-byte aligned
// addresses, and unsupported type mixes rejected; the cublasGemmEx fallback (for keys cuBLASLt
// finds no algorithm for) on every case.
#include "backend/cuda/gemm.h"

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <string>
#include <tuple>
#include <vector>

#include <fmt/format.h>

#include <gtest/gtest.h>

#include "core/error.h"
#include "gpu_test_util.h"
#include "kernel_test_util.h"

namespace tailor::testing {
namespace {

using backend::cuda::CublasLtGemm;
using backend::cuda::GemmCall;
using backend::cuda::GemmType;

// Type combinations: all f32; bf16 a, b with bf16 c; bf16 a, b with f32 c.
enum class GemmMode { kF32, kBF16ToBF16, kBF16ToF32 };

DType in_dtype(GemmMode m) { return m == GemmMode::kF32 ? DType::kF32 : DType::kBF16; }
DType out_dtype(GemmMode m) { return m == GemmMode::kBF16ToBF16 ? DType::kBF16 : DType::kF32; }
GemmType gemm_type(DType d) { return d == DType::kF32 ? GemmType::kF32 : GemmType::kBF16; }
double mode_tolerance(GemmMode m) { return m == GemmMode::kF32 ? 1e-5 : 1e-2; }
const char* mode_label(GemmMode m) {
  switch (m) {
    case GemmMode::kF32:
      return "f32";
    case GemmMode::kBF16ToBF16:
      return "bf16_bf16";
    case GemmMode::kBF16ToF32:
      return "bf16_f32";
  }
  return "?";
}

struct Mnk {
  std::int64_t m, n, k;
};
constexpr Mnk kShapes[] = {{1, 1, 1}, {7, 13, 5}, {65, 33, 129}, {256, 512, 128}};

using GemmCase = std::tuple<int, bool, bool, GemmMode>;  // shape index, trans_a, trans_b, mode

std::string gemm_case_name(const ::testing::TestParamInfo<GemmCase>& info) {
  const auto [si, ta, tb, mode] = info.param;
  const Mnk s = kShapes[si];
  return fmt::format("m{}_n{}_k{}_{}{}_{}", s.m, s.n, s.k, ta ? "T" : "N", tb ? "T" : "N",
                     mode_label(mode));
}

class GemmTest : public ::testing::TestWithParam<GemmCase> {
 protected:
  void SetUp() override { TAILOR_REQUIRE_GPU_OR_SKIP(); }
};

GemmCall make_call(const DeviceTensor& a, bool ta, const DeviceTensor& b, bool tb,
                   const DeviceTensor& c, Mnk s, float alpha, float beta) {
  auto ptr = [](const DeviceTensor& t) -> void* {
    return t.dtype() == DType::kF32 ? static_cast<void*>(t.as<float>())
                                    : static_cast<void*>(t.as<std::uint16_t>());
  };
  GemmCall call;
  call.a = ptr(a);
  call.a_type = gemm_type(a.dtype());
  call.trans_a = ta;
  call.b = ptr(b);
  call.b_type = gemm_type(b.dtype());
  call.trans_b = tb;
  call.c = ptr(c);
  call.c_type = gemm_type(c.dtype());
  call.m = s.m;
  call.n = s.n;
  call.k = s.k;
  call.alpha = alpha;
  call.beta = beta;
  return call;
}

TEST_P(GemmTest, MatchesCpu) {
  const auto [si, ta, tb, mode] = GetParam();
  const Mnk s = kShapes[si];
  const DType in = in_dtype(mode);
  const DType out = out_dtype(mode);
  std::vector<float> a = random_normal(s.m * s.k, 61, 1);
  std::vector<float> b = random_normal(s.k * s.n, 61, 2);
  std::vector<float> c0 = random_normal(s.m * s.n, 61, 3);
  round_for(in, a);
  round_for(in, b);
  round_for(out, c0);
  const Shape a_shape = ta ? Shape{s.k, s.m} : Shape{s.m, s.k};
  const Shape b_shape = tb ? Shape{s.n, s.k} : Shape{s.k, s.n};
  constexpr float kAlpha = 0.75f;

  const DeviceTensor ga = DeviceTensor::from(in, a);
  const DeviceTensor gb = DeviceTensor::from(in, b);
  CublasLtGemm gemm(nullptr);
  for (const float beta : {0.0f, 1.0f}) {
    std::vector<float> want = c0;
    cpu_ops().gemm(cpu_view(a, a_shape), ta, cpu_view(b, b_shape), tb, cpu_view(want, {s.m, s.n}),
                   kAlpha, beta);
    auto run = [&](CublasLtGemm& g) {
      // beta == 0: c starts as NaN bytes, which the GEMM must not read.
      DeviceTensor c = beta == 0.0f ? DeviceTensor(out, s.m * s.n) : DeviceTensor::from(out, c0);
      g.run(make_call(ga, ta, gb, tb, c, s, kAlpha, beta));
      sync_device();
      return c;
    };
    const std::string what = fmt::format("gemm beta={}", beta);
    const DeviceTensor first = run(gemm);
    expect_matches(what.c_str(), first, want, mode_tolerance(mode));
    const DeviceTensor again = run(gemm);
    EXPECT_TRUE(first.bytes() == again.bytes()) << what << ": two runs differ";
    CublasLtGemm fresh(nullptr);
    const DeviceTensor other = run(fresh);
    EXPECT_TRUE(first.bytes() == other.bytes()) << what << ": a second CublasLtGemm differs";
    // The fallback for keys cuBLASLt has no algorithm for (cublasGemmEx) agrees with the CPU.
    CublasLtGemm fallback(nullptr);
    fallback.force_fallback(true);
    expect_matches((what + " (cublasGemmEx fallback)").c_str(), run(fallback), want,
                   mode_tolerance(mode));
    EXPECT_EQ(fallback.fallback_plans(), 1u);
  }
  // One plan for the key (beta is not part of it).
  EXPECT_EQ(gemm.plans(), 1u);
}

std::vector<GemmCase> gemm_cases() {
  std::vector<GemmCase> cases;
  for (const GemmMode mode : {GemmMode::kF32, GemmMode::kBF16ToBF16, GemmMode::kBF16ToF32})
    for (int si = 0; si < static_cast<int>(std::size(kShapes)); ++si)
      for (const bool ta : {false, true})
        for (const bool tb : {false, true}) cases.emplace_back(si, ta, tb, mode);
  return cases;
}

INSTANTIATE_TEST_SUITE_P(All, GemmTest, ::testing::ValuesIn(gemm_cases()), gemm_case_name);

class GemmEdgeTest : public ::testing::Test {
 protected:
  void SetUp() override { TAILOR_REQUIRE_GPU_OR_SKIP(); }
};

// K == 0: no products, c = beta * c (cleared when beta is 0, even from NaN); M == 0: nothing.
TEST_F(GemmEdgeTest, EmptyDimensions) {
  CublasLtGemm gemm(nullptr);
  const Mnk s{5, 3, 0};
  const std::vector<float> c0 = random_normal(s.m * s.n, 67, 1);
  for (const DType out : {DType::kF32, DType::kBF16}) {
    std::vector<float> base = c0;
    round_for(out, base);
    const DeviceTensor in_a(out, 0);  // f32 x f32 -> f32, bf16 x bf16 -> bf16
    const DeviceTensor in_b(out, 0);
    for (const float beta : {0.0f, 1.0f, -2.5f}) {
      DeviceTensor c = beta == 0.0f ? DeviceTensor(out, s.m * s.n) : DeviceTensor::from(out, base);
      gemm.run(make_call(in_a, false, in_b, false, c, s, 1.0f, beta));
      sync_device();
      std::vector<float> want = base;
      for (float& v : want) v = beta == 0.0f ? 0.0f : v * beta;
      round_for(out, want);
      const std::string what = fmt::format("k=0 beta={} {}", beta, dtype_label(out));
      expect_matches(what.c_str(), c, want, 1e-7);
      EXPECT_TRUE(c.to_f32() == want) << what << ": not exactly beta * c";
    }
  }
  // M == 0 and N == 0: c untouched (and not even dereferenced).
  const DeviceTensor c(DType::kF32, 0);
  const DeviceTensor a(DType::kF32, 0);
  const DeviceTensor b(DType::kF32, 0);
  gemm.run(make_call(a, false, b, false, c, Mnk{0, 4, 3}, 1.0f, 0.0f));
  gemm.run(make_call(a, false, b, false, c, Mnk{4, 0, 3}, 1.0f, 0.0f));
  sync_device();
  EXPECT_TRUE(c.guards_intact());
  EXPECT_EQ(gemm.plans(), 0u);
}

// Operands one element past an aligned address (4-byte f32, 2-byte bf16) get a plan of their own
// that runs there, and agree with the CPU.
TEST_F(GemmEdgeTest, UnalignedOperands) {
  const Mnk s{7, 13, 5};
  for (const GemmMode mode : {GemmMode::kF32, GemmMode::kBF16ToBF16}) {
    const DType in = in_dtype(mode);
    const DType out = out_dtype(mode);
    std::vector<float> a = random_normal(s.m * s.k, 71, 1);
    std::vector<float> b = random_normal(s.k * s.n, 71, 2);
    round_for(in, a);
    round_for(in, b);
    std::vector<float> want(static_cast<std::size_t>(s.m * s.n));
    cpu_ops().gemm(cpu_view(a, {s.m, s.k}), false, cpu_view(b, {s.k, s.n}), false,
                   cpu_view(want, {s.m, s.n}), 1.0, 0.0);
    // Shift each operand by one element: a padded copy, called from element 1.
    auto shifted = [](const std::vector<float>& v) {
      std::vector<float> padded(v.size() + 1, 0.0f);
      for (std::size_t i = 0; i < v.size(); ++i) padded[i + 1] = v[i];
      return padded;
    };
    const DeviceTensor ga = DeviceTensor::from(in, shifted(a));
    const DeviceTensor gb = DeviceTensor::from(in, shifted(b));
    const DeviceTensor gc = DeviceTensor::from(out, shifted(std::vector<float>(want.size(), 0.0f)));
    GemmCall call = make_call(ga, false, gb, false, gc, s, 1.0f, 0.0f);
    const std::size_t in_size = in == DType::kF32 ? 4 : 2;
    const std::size_t out_size = out == DType::kF32 ? 4 : 2;
    call.a = static_cast<const char*>(call.a) + in_size;
    call.b = static_cast<const char*>(call.b) + in_size;
    call.c = static_cast<char*>(call.c) + out_size;
    if (mode != GemmMode::kF32) round_for(out, want);
    for (const bool fallback : {false, true}) {  // cuBLASLt, then the cublasGemmEx fallback
      CublasLtGemm gemm(nullptr);
      gemm.force_fallback(fallback);
      gemm.run(call);
      sync_device();
      std::vector<float> got = gc.to_f32();
      EXPECT_EQ(got[0], 0.0f) << "wrote before c";
      got.erase(got.begin());
      EXPECT_LT(rel_error(got, want), mode_tolerance(mode)) << mode_label(mode) << fallback;
      EXPECT_TRUE(gc.guards_intact());
    }
  }
}

TEST_F(GemmEdgeTest, RejectsUnsupportedTypes) {
  CublasLtGemm gemm(nullptr);
  const DeviceTensor f(DType::kF32, 4);
  const DeviceTensor h(DType::kBF16, 4);
  const Mnk s{2, 2, 2};
  EXPECT_THROW(gemm.run(make_call(f, false, h, false, f, s, 1.0f, 0.0f)), InternalError);
  EXPECT_THROW(gemm.run(make_call(h, false, f, false, f, s, 1.0f, 0.0f)), InternalError);
  EXPECT_THROW(gemm.run(make_call(f, false, f, false, h, s, 1.0f, 0.0f)), InternalError);
}

}  // namespace
}  // namespace tailor::testing
