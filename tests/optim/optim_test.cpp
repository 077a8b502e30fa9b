// Schedules, AdamW/SGD updates and clipping against values computed by hand.
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>

#include "backend/cpu/cpu_ops.h"
#include "optim/grad_norm.h"
#include "optim/optimizer.h"
#include "optim/schedule.h"

namespace tailor::optim {
namespace {

TEST(Schedule, WarmupThenCosineToFloor) {
  ScheduleSpec s{ScheduleType::kCosine, 1.0, 4, 14, 0.1};
  EXPECT_DOUBLE_EQ(learning_rate(s, 0), 0.25);
  EXPECT_DOUBLE_EQ(learning_rate(s, 3), 1.0);
  EXPECT_DOUBLE_EQ(learning_rate(s, 4), 1.0);           // p = 0
  // p = (s - W) / (S - 1 - W) = 4.5 / 9 at s = 8.5: check s = 9 -> p = 5/9.
  EXPECT_NEAR(learning_rate(s, 9), 0.1 + 0.9 * 0.5 * (1 + std::cos(std::numbers::pi * 5.0 / 9.0)), 1e-15);
  EXPECT_DOUBLE_EQ(learning_rate(s, 13), 0.1);           // last step at the floor
}

TEST(Schedule, LinearAndConstant) {
  ScheduleSpec lin{ScheduleType::kLinear, 2.0, 0, 5, 0.0};
  EXPECT_DOUBLE_EQ(learning_rate(lin, 0), 2.0);
  EXPECT_DOUBLE_EQ(learning_rate(lin, 2), 1.0);
  EXPECT_DOUBLE_EQ(learning_rate(lin, 4), 0.0);
  ScheduleSpec c{ScheduleType::kConstant, 3e-4, 2, 100, 0.0};
  EXPECT_DOUBLE_EQ(learning_rate(c, 0), 1.5e-4);
  EXPECT_DOUBLE_EQ(learning_rate(c, 50), 3e-4);
}

// Two parameters in one flat buffer: w (decayed) and b (not).
void two_params(model::ParameterSet& ps, const backend::Ops& ops) {
  (void)ps.add("w", Shape{2}, model::ParamRole::kWeight);  // decayed
  (void)ps.add("b", Shape{1}, model::ParamRole::kBias);    // not decayed
  ps.allocate(DType::kF64, ops);
  ps.at("w").value.ptr<double>()[0] = 1.0;
  ps.at("w").value.ptr<double>()[1] = -2.0;
  ps.at("b").value.ptr<double>()[0] = 0.5;
}

TEST(AdamW, TwoStepsByHandWithDecayOnlyOnMatrices) {
  backend::CpuOps ops(1);
  model::ParameterSet ps;
  two_params(ps, ops);
  OptimizerSpec spec;
  spec.beta1 = 0.9;
  spec.beta2 = 0.99;
  spec.eps = 1e-8;
  spec.weight_decay = 0.1;
  auto opt = make_optimizer(spec, ops, whole_parameters(ps));
  const double grads[2][3] = {{0.5, -1.0, 2.0}, {0.1, 0.3, -1.0}};
  double w0 = 1.0, m = 0, v = 0, bv = 0.5, bm = 0, bvv = 0;
  const double lr = 0.01;
  for (int step = 1; step <= 2; ++step) {
    ps.at("w").grad.ptr<double>()[0] = grads[step - 1][0];
    ps.at("w").grad.ptr<double>()[1] = grads[step - 1][1];
    ps.at("b").grad.ptr<double>()[0] = grads[step - 1][2];
    opt->step(lr);
    // Reference for w[0] (decayed) and b (not decayed), as torch.optim.AdamW computes.
    const double g = grads[step - 1][0];
    w0 *= 1 - lr * 0.1;
    m = 0.9 * m + 0.1 * g;
    v = 0.99 * v + 0.01 * g * g;
    const double bc1 = 1 - std::pow(0.9, step), bc2 = 1 - std::pow(0.99, step);
    w0 -= lr / bc1 * m / (std::sqrt(v) / std::sqrt(bc2) + 1e-8);
    const double gb = grads[step - 1][2];
    bm = 0.9 * bm + 0.1 * gb;
    bvv = 0.99 * bvv + 0.01 * gb * gb;
    bv -= lr / bc1 * bm / (std::sqrt(bvv) / std::sqrt(bc2) + 1e-8);
    EXPECT_NEAR(ps.at("w").value.ptr<double>()[0], w0, 1e-15);
    EXPECT_NEAR(ps.at("b").value.ptr<double>()[0], bv, 1e-15);
  }
  EXPECT_EQ(opt->steps_taken(), 2);
}

TEST(Sgd, MomentumAndDecay) {
  backend::CpuOps ops(1);
  model::ParameterSet ps;
  two_params(ps, ops);
  OptimizerSpec spec;
  spec.kind = OptimizerKind::kSgd;
  spec.momentum = 0.5;
  spec.weight_decay = 0.1;
  auto opt = make_optimizer(spec, ops, {whole_parameters(ps)[0]});
  ps.at("w").grad.ptr<double>()[0] = 1.0;
  opt->step(0.1);  // w = 1*(1-0.01) - 0.1*1 = 0.89
  EXPECT_NEAR(ps.at("w").value.ptr<double>()[0], 0.89, 1e-15);
  opt->step(0.1);  // buf = 0.5*1 + 1 = 1.5; w = 0.89*0.99 - 0.15
  EXPECT_NEAR(ps.at("w").value.ptr<double>()[0], 0.89 * 0.99 - 0.15, 1e-15);
}

TEST(GradNorm, WeightedSumOfSquaresAndClipping) {
  backend::CpuOps ops(2);
  model::ParameterSet ps;
  two_params(ps, ops);
  ps.at("w").grad.ptr<double>()[0] = 3.0;
  ps.at("w").grad.ptr<double>()[1] = 0.0;
  ps.at("b").grad.ptr<double>()[0] = 4.0;
  std::vector<ParamSlice> slices = whole_parameters(ps);
  EXPECT_DOUBLE_EQ(local_grad_sum_squares(ops, slices), 25.0);
  // A tensor replicated on 2 TP ranks counts half on each.
  slices[1].norm_weight = 0.5;
  EXPECT_DOUBLE_EQ(local_grad_sum_squares(ops, slices), 9.0 + 8.0);
  slices[1].norm_weight = 1.0;
  EXPECT_DOUBLE_EQ(clip_to_norm(ops, slices, 5.0, 10.0), 1.0);  // below the limit: untouched
  EXPECT_DOUBLE_EQ(ps.at("b").grad.ptr<double>()[0], 4.0);
  EXPECT_NEAR(clip_to_norm(ops, slices, 5.0, 1.0), 1.0 / (5.0 + 1e-6), 1e-15);
  EXPECT_NEAR(ps.at("b").grad.ptr<double>()[0], 4.0 / (5.0 + 1e-6), 1e-15);
  EXPECT_NEAR(std::sqrt(local_grad_sum_squares(ops, slices)), 5.0 / (5.0 + 1e-6), 1e-12);
}

}  // namespace
}  // namespace tailor::optim
