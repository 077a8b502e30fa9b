// One optimizer step of a bf16 device run against the same step of the CPU's f32 run, parameter
// group by parameter group: the gradient each group received and the parameters after the update.
// A loss that tracks within 2% can hide a wrong gradient for a small group (norm weights, biases,
// LoRA factors, virtual-token embeddings), whose share of the loss is tiny; compared per group,
// such a bug is an O(1) error.
//
// Groups: parameters whose names differ only in their layer index ("model.layers.*.mlp.up_proj.
// weight"), so each kind of tensor is one group across the layers.
//
// Tolerances, from bf16's unit roundoff u = 2^-8 (round to nearest, 8 significant bits):
//  - Every tensor the device stores in bf16 (weights, activations, their gradients between ops)
//    carries a relative error of at most u per element; accumulation inside a kernel is f32, so
//    its own error (2^-24 per addition) is negligible. A reduction of length n over rounded
//    products has, normwise, a relative error of about sqrt(2) u when the rounding errors are
//    independent (they add in quadrature, as do the terms of random sign), and at most 2u times
//    the reduction's cancellation ratio sum|a_k b_k| / |sum a_k b_k| in the worst case.
//  - A parameter's gradient is the last of a chain of such reductions: the forward through the
//    layers below it and the backward through those above, about 8 rounded tensors per layer
//    each way (norm output, q/k/v, attention output, o-projection, residual, MLP input, gate/up,
//    activation, down-projection). Errors of successive stages add in quadrature too, so for m
//    stages the expected normwise error is sqrt(2 m) u; with 2 layers (m = 2 * 2 * 8 = 32):
//    8 u = 0.031. A weight gradient is itself a reduction over the step's tokens (n = 8 x 32 =
//    256 here), in which independent errors average out rather than add, so n does not raise it.
//  - kGradTol allows twice that expected error, 16 u = 0.0625, for the cancellation ratio of the
//    smallest groups (a norm weight's gradient is a sum over every token of products of mixed
//    sign). A missing term, a factor of 2 or a wrong sign is an error of 0.5 or more.
//  - The key bias's gradient is zero in exact arithmetic (the softmax ignores a shift of every
//    score), so both sides hold rounding noise: it is checked against the scale instead, its
//    norm below u^2 (1.5e-5) of the largest group's (a real gradient there would be ~1e-3 of it).
//    Groups whose gradient is exactly zero on both sides at the first step (LoRA A and an
//    adapter's down projection, while their partner is still zero) are checked at the second.
//  - The update: the device keeps f32 master weights and stores the model's copy in bf16 after
//    the step, so a parameter after the update may differ from the CPU's by one rounding (u |p|)
//    plus the learning rate times the gradient's error: |dp| <= 2 (u |p| + lr kGradTol |g|). The
//    learning rate is large (one step of lr 100), so that every group's update is well above
//    bf16's resolution of its values and an update that was skipped, doubled or given the wrong
//    gradient shows.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <regex>
#include <string>

#include "trainer/trainer.h"

namespace tailor::testing {

inline constexpr double kBf16UnitRoundoff = 1.0 / 256.0;  // 2^-8
inline constexpr double kGradTol = 16 * kBf16UnitRoundoff;

// "model.layers.3.mlp.up_proj.weight" -> "model.layers.*.mlp.up_proj.weight"
inline std::string parameter_group(const std::string& name) {
  static const std::regex digits("\\.[0-9]+\\.");
  return std::regex_replace(name, digits, ".*.");
}

struct GroupSums {
  std::int64_t numel = 0;
  double ref_grad = 0, got_grad = 0, grad_diff = 0;  // squared norms
  double ref_value = 0, value_diff = 0;
};

// Compares the last step's gradients, per group, of `got` (device, bf16) and `ref` (CPU, f32),
// both run with TrainOptions::keep_parameters. With `lr` > 0 (the runs were one SGD step of that
// rate: one_sgd_step), the parameters after the update are compared too. With
// `every_group_moves`, a group whose gradient is zero by construction fails the check (used after
// two steps, when every trainable group has a gradient).
inline void expect_step_tracks(const trainer::TrainSummary& got, const trainer::TrainSummary& ref,
                               double lr, bool every_group_moves) {
  ASSERT_EQ(got.parameters.size(), ref.parameters.size());
  std::map<std::string, GroupSums> groups;
  for (std::size_t k = 0; k < ref.parameters.size(); ++k) {
    const trainer::ParameterValues& g = got.parameters[k];
    const trainer::ParameterValues& r = ref.parameters[k];
    ASSERT_EQ(g.name, r.name);
    ASSERT_EQ(g.values.size(), r.values.size()) << r.name;
    ASSERT_EQ(g.gradient.size(), r.gradient.size()) << r.name << ": trainable on one side only";
    if (r.gradient.empty()) continue;  // frozen
    GroupSums& s = groups[parameter_group(r.name)];
    s.numel += static_cast<std::int64_t>(r.values.size());
    for (std::size_t i = 0; i < r.values.size(); ++i) {
      s.ref_grad += r.gradient[i] * r.gradient[i];
      s.got_grad += g.gradient[i] * g.gradient[i];
      s.grad_diff += (g.gradient[i] - r.gradient[i]) * (g.gradient[i] - r.gradient[i]);
      s.ref_value += r.values[i] * r.values[i];
      s.value_diff += (g.values[i] - r.values[i]) * (g.values[i] - r.values[i]);
    }
  }
  ASSERT_FALSE(groups.empty()) << "no trainable parameter";
  double largest = 0;
  for (const auto& [name, s] : groups) largest = std::max(largest, std::sqrt(s.ref_grad));
  ASSERT_GT(largest, 0.0) << "no gradient at all";
  for (const auto& [name, s] : groups) {
    const double ref_norm = std::sqrt(s.ref_grad), got_norm = std::sqrt(s.got_grad);
    const double grad_err = std::sqrt(s.grad_diff) / std::max(ref_norm, 1e-300);
    double value_bound =
        2 * (kBf16UnitRoundoff * std::sqrt(s.ref_value) + lr * kGradTol * ref_norm);
    std::printf("[step check] %-44s %6lld  |g| %.4e vs %.4e  err %.2e (%.1f u)",
                name.c_str(), static_cast<long long>(s.numel), got_norm, ref_norm, grad_err,
                grad_err / kBf16UnitRoundoff);
    if (lr > 0)
      std::printf("  params err %.2e, bound %.2e, update %.2e", std::sqrt(s.value_diff), value_bound,
                  lr * ref_norm);
    std::printf("\n");
    const double noise = kBf16UnitRoundoff * kBf16UnitRoundoff * largest;
    if (name.find("k_proj.bias") != std::string::npos) {  // zero in exact arithmetic
      EXPECT_LE(got_norm, noise) << name << ": a gradient where there is none";
      EXPECT_LE(ref_norm, noise) << name << ": a gradient where there is none (CPU)";
      value_bound = 2 * (kBf16UnitRoundoff * std::sqrt(s.ref_value) + lr * noise);
    } else if (ref_norm == 0 && got_norm == 0) {  // zero by construction at the first step
      EXPECT_FALSE(every_group_moves) << name << ": no gradient, nothing is checked";
    } else {
      EXPECT_LE(std::abs(got_norm - ref_norm) / ref_norm, kGradTol) << name << ": gradient norm";
      EXPECT_LE(grad_err, kGradTol) << name << ": gradient";
    }
    if (lr > 0) {
      EXPECT_LE(std::sqrt(s.value_diff), value_bound) << name << ": parameters after the update";
    }
  }
}

// The overrides that make each step's update lr * gradient exactly: plain SGD, constant rate.
inline std::vector<std::string> sgd_steps(int steps, double lr) {
  return {"train.steps=" + std::to_string(steps), "optimizer.name=sgd", "optimizer.momentum=0",
          "optimizer.weight_decay=0", "optimizer.grad_clip=0", "schedule.type=constant",
          "schedule.warmup_steps=0", "optimizer.lr=" + std::to_string(lr)};
}

}  // namespace tailor::testing
