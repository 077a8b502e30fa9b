// Resuming from checkpoints in one process: a resumed run equals an uninterrupted one bit for bit
// (losses, metrics.jsonl, TensorBoard steps, and byte-identical checkpoint shards), a PEFT run's
// checkpoint holds only the adapter, non-finite steps are skipped together, and a checkpoint that
// does not fit the config is refused before anything is overwritten.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "checkpoint/training_checkpoint.h"
#include "config/config.h"
#include "core/error.h"
#include "test_dirs.h"
#include "trainer/tensorboard.h"
#include "trainer/trainer.h"

namespace tailor::trainer {
namespace {

namespace fs = std::filesystem;
using tailor::testing::read_file;
using tailor::testing::read_jsonl;
using tailor::testing::TempDir;

const char* kData = TAILOR_SOURCE_DIR "/datasets/devils-dictionary/devils_dictionary.txt";

std::string config_text(const std::string& out_dir, const std::string& extra = "") {
  return "output: {dir: " + out_dir + "}\n"
         "model: {vocab_size: 257, hidden_size: 32, num_layers: 2, num_heads: 4, num_kv_heads: 2,\n"
         "        intermediate_size: 64, max_position_embeddings: 64}\n"
         "data: {train: " + kData + ", split: paragraph, seq_len: 32}\n"
         "train: {steps: 12, seed: 5, global_batch: 8, micro_batch: 4, log_every: 1}\n"
         "optimizer: {lr: 3.0e-3, weight_decay: 0.1}\n"
         "schedule: {type: cosine, warmup_steps: 2}\n"
         "checkpoint: {every_steps: 4, keep_last: 5}\n"
         "runtime: {threads: 2}\n" + extra;
}

config::ExperimentConfig config_for(const std::string& out_dir,
                                    const std::vector<std::string>& overrides = {},
                                    const std::string& extra = "") {
  return config::load_config_text(config_text(out_dir, extra), "cfg.yaml", overrides);
}

// metrics.jsonl without the timing fields.
std::vector<nlohmann::json> metrics_without_timings(const std::string& run_dir) {
  std::vector<nlohmann::json> out = read_jsonl(run_dir + "/metrics.jsonl");
  for (nlohmann::json& j : out) {
    j.erase("tokens_per_s");
    j.erase("step_time_s");
  }
  return out;
}

std::map<std::string, std::string> shard_hashes(const std::string& step_dir) {
  std::map<std::string, std::string> out;
  for (const checkpoint::ManifestFile& f : checkpoint::read_manifest(step_dir).files)
    if (f.name != "config.yaml") out[f.name] = f.sha256;  // config.yaml names output.dir
  return out;
}

// Pretends the run crashed after step `step`'s checkpoint: later checkpoints are gone and
// `latest` names step_<step> (metrics.jsonl and tb/ still hold the later steps).
void rewind_to(const std::string& run_dir, std::int64_t step) {
  const std::string ck = run_dir + "/checkpoints";
  for (const auto& c : checkpoint::list_checkpoints(ck))
    if (c.step > step) fs::remove_all(c.dir);
  fs::remove(ck + "/latest");
  fs::create_directory_symlink("step_" + std::to_string(step), ck + "/latest");
}

void expect_resume_is_exact(const std::vector<std::string>& overrides, const std::string& extra) {
  TempDir dir;
  const std::string a = dir / "a", b = dir / "b";
  const TrainSummary full = train(config_for(a, overrides, extra));
  ASSERT_EQ(full.losses.size(), 12u);
  (void)train(config_for(b, overrides, extra));
  rewind_to(b, 4);
  const TrainSummary resumed = train(config_for(b, overrides, extra));
  EXPECT_EQ(resumed.start_step, 4);
  ASSERT_EQ(resumed.losses.size(), 8u);
  for (std::size_t i = 0; i < 8; ++i) EXPECT_EQ(resumed.losses[i], full.losses[i + 4]) << i;
  EXPECT_EQ(metrics_without_timings(b), metrics_without_timings(a));
  EXPECT_EQ(shard_hashes(b + "/checkpoints/step_12"), shard_hashes(a + "/checkpoints/step_12"));
  std::vector<std::int64_t> tb_steps;
  for (const std::string& f : list_event_files(b + "/tb"))
    for (const TbEvent& e : read_event_file(f))
      if (e.file_version.empty()) tb_steps.push_back(e.step);
  EXPECT_EQ(tb_steps, (std::vector<std::int64_t>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}));
}

TEST(Resume, ContinuesBitwiseLikeAnUninterruptedRun) { expect_resume_is_exact({}, ""); }

TEST(Resume, ContinuesBitwiseWithSgdMomentum) {
  expect_resume_is_exact({"optimizer.name=sgd", "optimizer.momentum=0.9", "optimizer.lr=0.05"}, "");
}

TEST(Resume, LoraCheckpointHoldsOnlyTheAdapterAndResumesBitwise) {
  const std::string lora = "peft: {method: lora, rank: 4, alpha: 8, target_modules: [all-linear]}\n";
  expect_resume_is_exact({}, lora);
  TempDir d;  // (after the helper's TempDir is gone: the same path)
  (void)train(config_for(d.str(), {"train.steps=4"}, lora));
  const std::string step = d.str() + "/checkpoints/step_4";
  checkpoint::CheckpointReader reader(step, checkpoint::read_manifest(step), "model-");
  const std::vector<std::string> names = reader.names();
  ASSERT_FALSE(names.empty());
  for (const std::string& n : names) EXPECT_NE(n.find(".lora_"), std::string::npos) << n;
  const auto manifest = checkpoint::read_manifest(step);
  EXPECT_EQ(manifest.peft_method, "lora");
  EXPECT_FALSE(manifest.base_identity.empty());
}

// Dropout masks are keyed by (seed, step, linear, global index): the resumed steps draw the masks
// the uninterrupted run drew, and a different micro-batch split (resume with another
// train.micro_batch) would draw them too.
TEST(Resume, LoraDropoutResumesBitwise) {
  expect_resume_is_exact(
      {}, "peft: {method: lora, rank: 4, alpha: 8, dropout: 0.1, target_modules: [all-linear]}\n");
}

// Prompt embeddings are ordinary trainable parameters: the checkpoint holds them alone and the
// run resumes bit for bit.
TEST(Resume, PromptTuningCheckpointHoldsOnlyThePromptAndResumesBitwise) {
  const std::string prompt = "peft: {method: prompt_tuning, num_virtual_tokens: 4}\n";
  expect_resume_is_exact({}, prompt);
  TempDir d;
  (void)train(config_for(d.str(), {"train.steps=4"}, prompt));
  const std::string step = d.str() + "/checkpoints/step_4";
  checkpoint::CheckpointReader reader(step, checkpoint::read_manifest(step), "model-");
  EXPECT_EQ(reader.names(), std::vector<std::string>{"prompt_embeddings"});
  EXPECT_EQ(checkpoint::read_manifest(step).peft_method, "prompt_tuning");
}

TEST(Resume, NonFiniteStepsAreSkippedAndTooManyStopTheRun) {
  TempDir d;
  ::setenv("TAILOR_FAULT_NAN_STEPS", "3", 1);
  const TrainSummary s = train(config_for(d.str(), {"checkpoint.every_steps=0"}));
  EXPECT_EQ(s.skipped_steps, 1);
  EXPECT_TRUE(std::isfinite(s.losses[2]));  // only the gradient was poisoned
  EXPECT_TRUE(std::isfinite(s.losses.back()));
  const auto metrics = read_jsonl(d.str() + "/metrics.jsonl");
  EXPECT_TRUE(metrics[2]["grad_norm"].is_null());  // NaN is written as null
  EXPECT_TRUE(metrics[3]["grad_norm"].is_number());
  ::setenv("TAILOR_FAULT_NAN_STEPS", "3,4,5", 1);
  try {
    (void)train(config_for(d / "again", {"checkpoint.every_steps=0", "train.max_skipped_steps=3"}));
    ADD_FAILURE() << "no error";
  } catch (const RuntimeError& err) {
    EXPECT_NE(std::string(err.what()).find("step 5: 3 consecutive steps had a non-finite loss"),
              std::string::npos)
        << err.what();
  }
  ::unsetenv("TAILOR_FAULT_NAN_STEPS");
}

TEST(Resume, RefusesAnotherRunsCheckpointBeforeWritingAnything) {
  TempDir d;
  (void)train(config_for(d.str(), {"train.steps=4"}));
  const std::string before = read_file(d.str() + "/metrics.jsonl");
  try {
    (void)train(config_for(d.str(), {"data.seq_len=16"}));
    ADD_FAILURE() << "no error";
  } catch (const UserError& e) {
    EXPECT_EQ(std::string(e.what()),
              d.str() + "/checkpoints/step_4: cannot resume with a different data.seq_len: 32 in "
                        "the checkpoint, 16 now (only steps, logging, checkpoint cadence, layout "
                        "and threads may change; see docs/checkpoints.md)");
  }
  EXPECT_EQ(read_file(d.str() + "/metrics.jsonl"), before);
  try {
    (void)train(config_for(d.str(), {"train.resume=never"}));
    ADD_FAILURE() << "no error";
  } catch (const UserError& e) {
    EXPECT_EQ(std::string(e.what()),
              d.str() + "/checkpoints: holds checkpoints of an earlier run (newest: step 4); set "
                        "train.resume=auto to continue it, or choose another output.dir");
  }
  // An explicit checkpoint that is damaged is refused, naming the file.
  const std::string step = d.str() + "/checkpoints/step_4";
  fs::resize_file(step + "/model-tp0-of-1.h5", 1000);
  const std::string other = d / "other";  // (one TempDir per test: its path is per test)
  try {
    (void)train(config_for(other, {"train.resume=" + step}));
    ADD_FAILURE() << "no error";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find(step + "/model-tp0-of-1.h5: 1000 bytes, the manifest says"),
              std::string::npos)
        << e.what();
  }
  EXPECT_FALSE(fs::exists(other + "/metrics.jsonl"));
  // Longer training from a finished run: train.steps may change.
  const std::string longer = d / "longer";
  (void)train(config_for(longer, {"train.steps=4"}));
  const TrainSummary more = train(config_for(longer, {"train.steps=6"}));
  EXPECT_EQ(more.start_step, 4);
  EXPECT_EQ(more.losses.size(), 2u);
}

}  // namespace
}  // namespace tailor::trainer

namespace tailor::trainer {
namespace {

TEST(EvalEvery, WritesEvalRecordsAtTheirStepsAndSurvivesResume) {
  TempDir d;
  const auto cfg = [&](const std::string& steps) {
    return config_for(d.str(), {"data.valid_fraction=0.05", "train.eval_every=4", "train.steps=" + steps});
  };
  const TrainSummary first = train(cfg("8"));
  const TrainSummary more = train(cfg("12"));  // resumes at 8
  EXPECT_EQ(more.start_step, 8);
  std::vector<std::int64_t> eval_steps;
  double last = 0.0;
  for (const auto& j : read_jsonl(d.str() + "/metrics.jsonl"))
    if (j.contains("eval_loss")) {
      eval_steps.push_back(j["step"].get<std::int64_t>());
      last = j["eval_loss"].get<double>();
      EXPECT_DOUBLE_EQ(j["eval_ppl"].get<double>(), std::exp(last));
    }
  EXPECT_EQ(eval_steps, (std::vector<std::int64_t>{4, 8, 12}));
  EXPECT_EQ(last, more.eval_loss);
  EXPECT_GT(first.eval_loss, 0.0);
}

}  // namespace
}  // namespace tailor::trainer
