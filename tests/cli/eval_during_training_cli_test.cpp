// Issue 19, item 12: generation metrics during training (train.eval_metrics), the best
// checkpoint (checkpoint.keep_best) and early stopping (train.early_stopping_patience), on the
// translation example.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "cli/run_tailor.h"

namespace {

namespace fs = std::filesystem;
using tailor::testing::last_json_line;
using tailor::testing::read_jsonl;
using tailor::testing::run_tailor;
using tailor::testing::TempDir;

const std::string kConfig = "configs/translation-example.yaml";

std::string common(const TempDir& tmp) {
  return " data.cache_dir=" + tmp / "cache" + " runtime.threads=2 output.dir=" + tmp / "run";
}

// The scores training logs are the ones `tailor eval` gives the checkpoint of that step with the
// same records and lengths (its BLEU and chrF are sacreBLEU's: tests/eval/metrics_test.cpp).
TEST(EvalDuringTraining, MetricsEqualTailorEvalOfTheSameStep) {
  TempDir tmp;
  const std::string gen = " train.eval_max_records=6 train.eval_max_new_tokens=24";
  const auto t = run_tailor("train " + kConfig + common(tmp) + gen +
                                " train.steps=4 train.eval_every=2 checkpoint.every_steps=4"
                                " train.eval_metrics=[bleu,chrf,rouge_l]",
                            tmp);
  ASSERT_EQ(t.code, 0) << t.err;
  std::vector<nlohmann::json> evals;
  for (const auto& j : read_jsonl(tmp / "run/metrics.jsonl"))
    if (j.contains("eval_loss")) evals.push_back(j);
  ASSERT_EQ(evals.size(), 2u);  // steps 2 and 4
  EXPECT_EQ(evals[1]["step"], 4);
  for (const char* key : {"eval_bleu", "eval_chrf", "eval_rouge_l"})
    ASSERT_TRUE(evals[1].contains(key)) << evals[1].dump();
  EXPECT_EQ(evals[1].size(), 7u) << evals[1].dump();  // step, loss, ppl, tokens + the three
  EXPECT_NE(t.err.find("eval at step 4: loss "), std::string::npos) << t.err;
  EXPECT_NE(t.err.find("(6 dev answers)"), std::string::npos) << t.err;
  const auto e = run_tailor("eval " + kConfig + common(tmp) + " --checkpoint " + tmp / "run" +
                                " --max-records 6 --max-new-tokens 24",
                            tmp);
  ASSERT_EQ(e.code, 0) << e.err;
  const nlohmann::json report = last_json_line(e.out);
  EXPECT_EQ(report["step"], 4);
  EXPECT_EQ(report["records"], 6);
  EXPECT_EQ(report["bleu"].get<double>(), evals[1]["eval_bleu"].get<double>());
  EXPECT_EQ(report["chrf"].get<double>(), evals[1]["eval_chrf"].get<double>());
  EXPECT_EQ(report["rouge_l"].get<double>(), evals[1]["eval_rouge_l"].get<double>());
  EXPECT_EQ(report["eval_loss"].get<double>(), evals[1]["eval_loss"].get<double>());
}

// A tiny model after a few steps answers no dev record exactly: exact_match is 0 at every
// evaluation, so the first is the best (a tie is no improvement) and patience 2 stops the run at
// the third. The best checkpoint survives keep_last 1; the run ends as a finished run (exit 0,
// exported) at the step it stopped.
TEST(EvalDuringTraining, KeepsTheBestCheckpointAndStopsEarly) {
  TempDir tmp;
  const std::string args =
      "train " + kConfig + common(tmp) +
      " train.steps=20 train.eval_every=2 train.eval_metrics=[exact_match]"
      " train.eval_max_records=4 train.eval_max_new_tokens=8 checkpoint.keep_best=exact_match"
      " train.early_stopping_patience=2 checkpoint.every_steps=5 checkpoint.keep_last=1"
      " train.log_every=1";
  const auto t = run_tailor(args, tmp);
  ASSERT_EQ(t.code, 0) << t.err;
  EXPECT_NE(t.err.find("best exact_match so far: 0.0000 at step 2 (checkpoints/best)"),
            std::string::npos)
      << t.err;
  EXPECT_NE(t.err.find("early stopping after step 6: 2 evaluations without a better exact_match"),
            std::string::npos)
      << t.err;
  std::vector<std::int64_t> steps, eval_steps;
  for (const auto& j : read_jsonl(tmp / "run/metrics.jsonl")) {
    if (j.contains("eval_loss")) {
      eval_steps.push_back(j["step"]);
      EXPECT_EQ(j["eval_exact_match"].get<double>(), 0.0);
    } else {
      steps.push_back(j["step"]);
    }
  }
  EXPECT_EQ(steps.size(), 6u);
  EXPECT_EQ(eval_steps, (std::vector<std::int64_t>{2, 4, 6}));
  const std::string ckpts = tmp / "run/checkpoints";
  EXPECT_EQ(fs::read_symlink(ckpts + "/best").string(), "step_2");
  EXPECT_EQ(fs::read_symlink(ckpts + "/latest").string(), "step_6");  // the last step is saved
  EXPECT_TRUE(fs::exists(ckpts + "/step_2/manifest.json"));
  EXPECT_FALSE(fs::exists(ckpts + "/step_5"));  // keep_last 1: pruned, unlike the best
  EXPECT_TRUE(fs::exists(tmp / "run/export/config.json"));
  // The best checkpoint is an ordinary one: it verifies and evaluates.
  EXPECT_EQ(run_tailor("inspect " + ckpts + "/best", tmp).code, 0);
  // Running the command again resumes a run that has stopped: nothing more to train.
  const auto again = run_tailor(args, tmp);
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_NE(again.err.find("this run stopped early at step 6"), std::string::npos) << again.err;
  std::size_t records = read_jsonl(tmp / "run/metrics.jsonl").size();
  EXPECT_EQ(records, 9u);  // 6 steps + 3 evaluations, as before
  // Another metric on resume compares anew (the stored best is exact_match's): the dev loss
  // improves at the next evaluation, which becomes the best.
  const auto by_loss = run_tailor(args + " checkpoint.keep_best=loss train.steps=8", tmp);
  ASSERT_EQ(by_loss.code, 0) << by_loss.err;
  EXPECT_NE(by_loss.err.find("checkpoint.keep_best is loss now (exact_match before)"),
            std::string::npos)
      << by_loss.err;
  EXPECT_EQ(fs::read_symlink(ckpts + "/best").string(), "step_8");
  EXPECT_FALSE(fs::exists(ckpts + "/step_2"));  // no longer the best: keep_last 1 prunes it
}

}  // namespace
