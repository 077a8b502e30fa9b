// Whole-model gradient check in f64: every element of every parameter gradient from the explicit
// backward pass against a central finite difference of the summed token loss.
#include <gtest/gtest.h>

#include <cmath>

#include "backend/cpu/cpu_ops.h"
#include "model_test_util.h"

namespace tailor::model {
namespace {

using testing::sample_batch;

struct Case {
  const char* name;
  ModelSpec spec;
};

class TransformerGradient : public ::testing::TestWithParam<Case> {};

TEST_P(TransformerGradient, MatchesCentralDifferences) {
  backend::CpuOps ops(2);
  Transformer model(GetParam().spec, ops, DType::kF64);
  model.init_parameters(1234);
  // Give norms and biases non-trivial values so their gradients are exercised fully.
  for (Parameter& p : model.params().all()) {
    if (p.shape.rank() == 1) {
      double* v = p.value.ptr<double>();
      for (std::int64_t i = 0; i < p.shape.numel(); ++i) v[i] += 0.1 * std::sin(1.0 + static_cast<double>(i));
    }
  }
  auto hb = sample_batch();
  model.params().zero_grad(ops);
  const double loss = model.forward_backward(hb.batch, 1.0);
  EXPECT_TRUE(std::isfinite(loss));
  EXPECT_DOUBLE_EQ(loss, model.forward(hb.batch));

  const double h = 1e-5;
  int checked = 0;
  for (Parameter& p : model.params().all()) {
    double* v = p.value.ptr<double>();
    const double* g = p.grad.ptr<double>();
    double num = 0.0, den = 0.0;
    // Padding rows of the vocabulary must get exactly zero gradient.
    const bool vocab_rows = p.name == "model.embed_tokens.weight" || p.name == "lm_head.weight";
    for (std::int64_t i = 0; i < p.shape.numel(); ++i) {
      if (vocab_rows && i / p.shape.cols() >= GetParam().spec.vocab_size) {
        ASSERT_EQ(g[i], 0.0) << p.name << " padding row gradient at " << i;
        continue;
      }
      const double saved = v[i];
      v[i] = saved + h;
      const double lp = model.forward(hb.batch);
      v[i] = saved - h;
      const double lm = model.forward(hb.batch);
      v[i] = saved;
      const double fd = (lp - lm) / (2 * h);
      num += (g[i] - fd) * (g[i] - fd);
      den += fd * fd;
      ++checked;
    }
    if (p.name.ends_with("k_proj.bias")) {
      // Softmax is invariant to the key bias (it adds q.b to every score of a row): the exact
      // gradient is zero, and the finite difference is rounding noise.
      EXPECT_LT(std::sqrt(num), 1e-8) << p.name;
      continue;
    }
    const double rel = std::sqrt(num) / std::max(std::sqrt(den), 1e-12);
    EXPECT_LT(rel, 1e-6) << p.name << " |g|=" << std::sqrt(den);
    EXPECT_GT(den, 1e-12) << p.name << " has an all-zero gradient";
  }
  EXPECT_GT(checked, 500);
}

INSTANTIATE_TEST_SUITE_P(Families, TransformerGradient,
                         ::testing::Values(Case{"llama", testing::tiny_llama()},
                                           Case{"gpt2", testing::tiny_gpt2()},
                                           Case{"sliding_window", testing::tiny_sliding()},
                                           Case{"qk_norm", testing::tiny_qk_norm()}),
                         [](const auto& case_info) { return std::string(case_info.param.name); });

}  // namespace
}  // namespace tailor::model
