// Every op of the registry (op_table.cpp) on every backend mode this build has, against CpuOps in
// f64 on the same inputs: cpu_f32, the emulated device in f32 and bf16, and CUDA in f32 and bf16
// in a CUDA build (skipped, not passed, without a GPU; TAILOR_REQUIRE_GPU=1 makes that a failure).
//
// Each test checks, for every tensor the op writes: no NaN or Inf (outputs start as NaN, so an
// element left unwritten shows up), normwise relative error under the mode's tolerance
// (op_registry.cpp: 1e-5 for f32, 1e-2 for bf16 storage); for every tensor: guard bands intact;
// for every input: its bytes unchanged. The reference passes the same checks.
#include <algorithm>
#include <cmath>
#include <string>
#include <tuple>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <gtest/gtest.h>

#include "op_registry.h"

namespace tailor::backend::test {
namespace {

const BackendMode& mode_named(const std::string& name) {
  for (const BackendMode& m : backend_modes())
    if (m.name == name) return m;
  TAILOR_ASSERT(false, "no backend mode {}", name);
  return backend_modes().front();
}

std::vector<std::string> op_names() {
  std::vector<std::string> names;
  for (const OpEntry& e : op_table()) names.emplace_back(e.name);
  return names;
}

std::vector<std::string> mode_names() {
  std::vector<std::string> names;
  for (const BackendMode& m : backend_modes()) names.push_back(m.name);
  return names;
}

bool all_finite(const std::vector<double>& v) {
  for (double x : v)
    if (!std::isfinite(x)) return false;
  return true;
}

bool written(Role r) { return r == Role::kOut || r == Role::kInOut; }

// The checks both the reference and the backend under test must pass.
void expect_sound(const std::string& who, const OpCase& c, const RunResult& r) {
  EXPECT_TRUE(r.broken_guards.empty())
      << who << " wrote outside " << fmt::format("{}", fmt::join(r.broken_guards, ", "));
  EXPECT_TRUE(r.changed_inputs.empty())
      << who << " changed inputs " << fmt::format("{}", fmt::join(r.changed_inputs, ", "));
  for (std::size_t i = 0; i < c.tensors.size(); ++i) {
    if (written(c.tensors[i].role)) {
      EXPECT_TRUE(all_finite(r.values[i])) << who << ": NaN or Inf in " << c.tensors[i].name;
    }
  }
  if (r.value) {
    EXPECT_TRUE(std::isfinite(*r.value)) << who << ": the returned value";
  }
}

class BackendOps : public ::testing::TestWithParam<std::tuple<std::string, std::string>> {};

TEST_P(BackendOps, MatchesTheF64Reference) {
  const auto& [op, mode_name] = GetParam();
  const BackendMode& mode = mode_named(mode_name);
  std::string why;
  const std::unique_ptr<Ops> ops = mode.make(2, why);
  if (!ops) {
    if (mode.gpu && gpu_required()) FAIL() << "TAILOR_REQUIRE_GPU=1 but " << why;
    GTEST_SKIP() << mode.name << ": " << why;
  }
  const OpCase c = make_case(op, Scale::kTest);
  const std::vector<HostTensor> inputs = make_inputs(c, mode.storage);
  std::string unused;
  const std::unique_ptr<Ops> ref_ops = reference_mode().make(2, unused);
  const RunResult want = run_case(c, *ref_ops, widen_to_f64(c, inputs));
  const RunResult got = run_case(c, *ops, inputs);
  expect_sound("the f64 reference", c, want);
  expect_sound(mode.name, c, got);

  const double tol = tolerance(mode.storage);
  for (std::size_t i = 0; i < c.tensors.size(); ++i) {
    if (!written(c.tensors[i].role)) continue;
    EXPECT_LT(rel_error(got.values[i], want.values[i]), tol)
        << c.tensors[i].name << " (" << c.dims << ")";
  }
  ASSERT_EQ(got.value.has_value(), want.value.has_value());
  if (want.value) {
    EXPECT_LT(std::abs(*got.value - *want.value) / std::max(std::abs(*want.value), 1e-300), tol)
        << "returned " << *got.value << ", reference " << *want.value;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Registry, BackendOps,
    ::testing::Combine(::testing::ValuesIn(op_names()), ::testing::ValuesIn(mode_names())),
    [](const ::testing::TestParamInfo<std::tuple<std::string, std::string>>& p) {
      return std::get<0>(p.param) + "_" + std::get<1>(p.param);
    });

// The benchmark's shapes: every entry builds at both scales, and names are unique.
TEST(OpTable, EveryEntryBuildsAtBothScalesUnderOneName) {
  std::vector<std::string> seen;
  for (const OpEntry& e : op_table()) {
    EXPECT_EQ(std::count(seen.begin(), seen.end(), e.name), 0) << e.name;
    seen.emplace_back(e.name);
    for (Scale s : {Scale::kTest, Scale::kPerf}) {
      const OpCase c = e.make(s);
      EXPECT_FALSE(c.tensors.empty()) << e.name;
      EXPECT_TRUE(static_cast<bool>(c.run)) << e.name;
      for (const TensorSpec& t : c.tensors)
        EXPECT_GT(t.shape.numel(), 0) << e.name << " " << t.name;
    }
  }
}

}  // namespace
}  // namespace tailor::backend::test
