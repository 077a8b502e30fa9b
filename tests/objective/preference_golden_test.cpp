// The preference objectives against TRL itself (tests/golden/make_preference_fixtures.py): a tiny
// random policy and its reference score a dozen pairs in f64 with transformers, and TRL's trainers
// (DPOTrainer, CPOTrainer for CPO and SimPO, ORPOTrainer) compute each objective from them. Tailor
// loads the same two models in f64 and must agree within 1e-6 on every pair's loss, rewards and
// log-probabilities, on the batch loss and on the autograd gradient of two norm weights; every
// trainable gradient is also checked against central finite differences.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "backend/cpu/cpu_ops.h"
#include "checkpoint/hf_model.h"
#include "objective/preference.h"
#include "optim/optimizer.h"
#include "objective/preference_test_util.h"

namespace tailor::objective {
namespace {

using nlohmann::json;

constexpr double kTol = 1e-6;

struct Model {
  checkpoint::HfModelConfig cfg;
  std::unique_ptr<model::Transformer> model;
  Model(backend::Ops& ops, const std::string& dir) : cfg(checkpoint::read_hf_config(dir)) {
    model = std::make_unique<model::Transformer>(cfg.spec, ops, DType::kF64);
    checkpoint::load_hf_weights(dir, cfg, *model, ops);
  }
};

PreferenceParams params_of(const json& c) {
  PreferenceParams p;
  const std::string kind = c["objective"];
  p.beta = c["beta"];
  p.label_smoothing = c.value("label_smoothing", 0.0);
  if (kind == "dpo") {
    p.kind = c["dpo_loss"] == "ipo" ? PreferenceKind::kIpo : PreferenceKind::kDpo;
  } else if (kind == "cpo") {
    p.kind = PreferenceKind::kCpo;
    p.nll_weight = c["nll_weight"];
  } else if (kind == "simpo") {
    p.kind = PreferenceKind::kSimpo;
    p.gamma = c["gamma"];
  } else {
    p.kind = PreferenceKind::kOrpo;
    p.nll_weight = c["nll_weight"];
  }
  return p;
}

class PreferenceGolden : public ::testing::Test {
 protected:
  backend::CpuOps ops{2};
  json expected = testing::read_preference_expected();
  Model policy{ops, testing::preference_fixture("preference/policy")};
  Model reference{ops, testing::preference_fixture("models/llama")};
  model::testing::HostBatch batch = testing::pair_batch(expected["pairs"]);
  comm::SelfCommunicator self;

  // One step of the objective on the fixture's batch: its loss (gradients in the policy).
  double step(Preference& obj) {
    policy.model->params().zero_grad(ops);
    const model::Batch* b = &batch.batch;
    obj.begin_step({&b, 1}, self);
    const double local = obj.micro_batch(*policy.model, batch.batch, {});
    return obj.step_loss(local, self);
  }
};

// The pure per-pair formulas on TRL's own log-probabilities.
TEST_F(PreferenceGolden, PairTermsMatchTrl) {
  const auto pol = expected["policy_logps_sum"].get<std::vector<double>>();
  const auto ref = expected["reference_logps_sum"].get<std::vector<double>>();
  const auto len = expected["answer_tokens"].get<std::vector<double>>();
  const std::size_t n = expected["pairs"].size();
  for (const json& c : expected["cases"]) {
    const PreferenceParams p = params_of(c);
    for (std::size_t i = 0; i < n; ++i) {
      const bool avg = length_normalized(p.kind);
      const double sc = avg ? 1.0 / len[i] : 1.0, sr = avg ? 1.0 / len[n + i] : 1.0;
      const PairTerms t =
          pair_terms(p, pol[i] * sc, pol[n + i] * sr, ref[i] * sc, ref[n + i] * sr, len[i], len[n + i]);
      const std::string at = std::string(c["name"]) + " pair " + std::to_string(i);
      // ORPOTrainer computes in float32 whatever the model's dtype (.float() on the log-probs).
      const double tol = p.kind == PreferenceKind::kOrpo ? kTol : 1e-12;
      EXPECT_NEAR(t.loss, c["pair_losses"][i].get<double>(), tol) << at;
      EXPECT_NEAR(t.reward_chosen, c["rewards_chosen"][i].get<double>(), tol) << at;
      EXPECT_NEAR(t.reward_rejected, c["rewards_rejected"][i].get<double>(), tol) << at;
      // The derivatives against central differences of the same formula.
      const double h = 1e-6;
      const auto loss_at = [&](double dc, double dr) {
        return pair_terms(p, pol[i] * sc + dc, pol[n + i] * sr + dr, ref[i] * sc, ref[n + i] * sr,
                          len[i], len[n + i])
            .loss;
      };
      EXPECT_NEAR(t.d_chosen, (loss_at(h, 0) - loss_at(-h, 0)) / (2 * h), 1e-7) << at;
      EXPECT_NEAR(t.d_rejected, (loss_at(0, h) - loss_at(0, -h)) / (2 * h), 1e-7) << at;
    }
  }
}

// Tailor's per-row log-probabilities (minus the sums of forward_token_losses) of both models.
TEST_F(PreferenceGolden, RowLogProbsMatchTransformers) {
  for (const auto& [m, key] : {std::pair{&policy, "policy_logps_sum"},
                               std::pair{&reference, "reference_logps_sum"}}) {
    const std::span<const double> losses = m->model->forward_token_losses(batch.batch);
    const auto want = expected[key].get<std::vector<double>>();
    // TRL's order: every chosen row, then every rejected row.
    const std::size_t n = want.size() / 2;
    const std::vector<std::int64_t> counts = row_target_counts(batch.batch);
    const auto len = expected["answer_tokens"].get<std::vector<double>>();
    for (std::int64_t r = 0; r < batch.batch.batch; ++r) {
      double sum = 0;
      for (std::int64_t t = 0; t < batch.batch.seq; ++t) sum -= losses[r * batch.batch.seq + t];
      const std::size_t k = static_cast<std::size_t>(r / 2) + (r % 2 == 0 ? 0 : n);
      EXPECT_NEAR(sum, want[k], kTol) << key << " row " << r;
      EXPECT_EQ(static_cast<double>(counts[static_cast<std::size_t>(r)]), len[k]) << r;
    }
  }
}

TEST_F(PreferenceGolden, LossMetricsAndGradientsMatchTrl) {
  for (const json& c : expected["cases"]) {
    const std::string name = c["name"];
    Preference obj(params_of(c), reference.model.get());
    const double loss = step(obj);
    EXPECT_NEAR(loss, c["loss"].get<double>(), kTol) << name;
    const PreferenceStats& s = obj.last_step();
    const auto mean = [&](const char* key) {
      double sum = 0;
      for (const json& v : c[key]) sum += v.get<double>();
      return sum / static_cast<double>(c[key].size());
    };
    EXPECT_NEAR(s.reward_chosen, mean("rewards_chosen"), kTol) << name;
    EXPECT_NEAR(s.reward_rejected, mean("rewards_rejected"), kTol) << name;
    EXPECT_NEAR(s.logp_chosen, mean("logps_chosen"), kTol) << name;
    EXPECT_NEAR(s.logp_rejected, mean("logps_rejected"), kTol) << name;
    EXPECT_NEAR(s.reward_accuracy, c["rewards_accuracy"].get<double>(), 1e-12) << name;
    EXPECT_NEAR(s.reward_margin, c["rewards_margin"].get<double>(), kTol) << name;
    if (c.contains("nll")) {
      EXPECT_NEAR(s.nll, c["nll"].get<double>(), kTol) << name;
    }
    if (c.contains("trl_metrics"))  // what DPOTrainer itself logged
      for (const auto& [key, value] : c["trl_metrics"].items()) {
        const double got = key == "rewards/chosen"       ? s.reward_chosen
                           : key == "rewards/rejected"   ? s.reward_rejected
                           : key == "rewards/accuracies" ? s.reward_accuracy
                           : key == "rewards/margins"    ? s.reward_margin
                           : key == "logps/chosen"       ? s.logp_chosen
                                                         : s.logp_rejected;
        EXPECT_NEAR(got, value.get<double>(), kTol) << name << " " << key;
      }
    // The gradient of the batch loss, as autograd computed it through TRL's loss.
    for (const auto& [param, want] : c["grads"].items()) {
      const model::Parameter& p = policy.model->params().at(param);
      const double* g = p.grad.ptr<double>();
      double num = 0, den = 0;
      for (std::size_t i = 0; i < want.size(); ++i) {
        const double w = want[i].get<double>();
        num += (g[i] - w) * (g[i] - w);
        den += w * w;
      }
      EXPECT_GT(den, 0.0) << name << " " << param;
      EXPECT_LT(std::sqrt(num / den), kTol) << name << " " << param;
    }
  }
}

TEST_F(PreferenceGolden, GradientsMatchFiniteDifferences) {
  for (const json& c : expected["cases"]) {
    const std::string name = c["name"];
    // (every kind's pair-level derivatives are checked in PairTermsMatchTrl)
    if (name != "dpo" && name != "ipo" && name != "orpo") continue;
    SCOPED_TRACE(name);
    Preference obj(params_of(c), reference.model.get());
    step(obj);
    // The gradients are kept in the policy; FD evaluations recompute the loss only.
    std::vector<std::vector<double>> grads;
    for (const model::Parameter& p : policy.model->params().all())
      grads.emplace_back(p.grad.ptr<double>(), p.grad.ptr<double>() + p.shape.numel());
    const auto loss = [&] {
      Preference again(params_of(c), reference.model.get());
      const double l = step(again);
      std::size_t k = 0;  // restore the gradients under test
      for (model::Parameter& p : policy.model->params().all()) {
        std::copy(grads[k].begin(), grads[k].end(), p.grad.ptr<double>());
        ++k;
      }
      return l;
    };
    EXPECT_GT(model::testing::expect_gradients_match_fd_of(*policy.model, loss, 6), 10);
  }
}

// A few full-batch AdamW updates (Tailor's optimizer) follow torch.optim.AdamW on TRL's loss.
TEST_F(PreferenceGolden, AdamWStepsMatchAPyTorchLoop) {
  const json& adamw = expected["adamw"];
  const double lr = adamw["lr"];
  for (const json& c : expected["cases"]) {
    const std::string name = c["name"];
    if (!adamw["cases"].contains(name)) continue;
    SCOPED_TRACE(name);
    Model fresh(ops, testing::preference_fixture("preference/policy"));
    std::swap(policy.model, fresh.model);  // step() trains policy.model
    optim::OptimizerSpec spec;
    spec.weight_decay = 0.0;
    const std::unique_ptr<optim::Optimizer> opt =
        optim::make_optimizer(spec, ops, optim::whole_parameters(policy.model->params()));
    const auto want = adamw["cases"][name].get<std::vector<double>>();
    for (std::size_t k = 0; k < want.size(); ++k) {
      Preference obj(params_of(c), reference.model.get());
      const double loss = step(obj);
      EXPECT_LT(std::abs(loss - want[k]), 1e-5 * std::abs(want[k])) << "before update " << k;
      if (k + 1 < want.size()) opt->step(lr);
    }
    std::swap(policy.model, fresh.model);
  }
}

}  // namespace
}  // namespace tailor::objective
