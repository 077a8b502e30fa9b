// End-to-end training on a tiny model: determinism, the run-directory contract, the loss going
// down, and bad data failing before anything is written.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "config/config.h"
#include "core/error.h"
#include "test_dirs.h"
#include "trainer/from_config.h"
#include "trainer/run_support.h"
#include "trainer/trainer.h"

namespace tailor::trainer {
namespace {

using tailor::testing::read_file;
using tailor::testing::read_jsonl;
using tailor::testing::TempDir;

std::string tiny_config(const std::string& out_dir, const std::string& data) {
  return "output: {dir: " + out_dir + "}\n"
         "model: {vocab_size: 257, hidden_size: 32, num_layers: 2, num_heads: 4, num_kv_heads: 2,\n"
         "        intermediate_size: 64, max_position_embeddings: 64}\n"
         "data: {train: " + data + ", split: paragraph, seq_len: 32}\n"
         "train: {steps: 12, seed: 5, global_batch: 8, micro_batch: 2, log_every: 1}\n"
         "optimizer: {lr: 3.0e-3, weight_decay: 0.1}\n"
         "schedule: {type: cosine, warmup_steps: 2}\n"
         "runtime: {threads: 2}\n";
}

const char* kData = TAILOR_SOURCE_DIR "/datasets/devils-dictionary/devils_dictionary.txt";

TEST(Trainer, TwoRunsAreBitwiseIdenticalAndFollowTheRunDirContract) {
  TempDir tmp;
  std::vector<std::vector<nlohmann::json>> runs;
  for (const char* name : {"a", "b"}) {
    const auto cfg = config::load_config_text(tiny_config(tmp / name, kData), "tiny.yaml");
    const TrainSummary s = train(cfg);
    EXPECT_EQ(s.steps, 12);
    runs.push_back(read_jsonl(tmp / name + "/metrics.jsonl"));
    EXPECT_TRUE(std::filesystem::exists(tmp / name + "/config.resolved.yaml"));
  }
  ASSERT_EQ(runs[0].size(), 12u);
  ASSERT_EQ(runs[1].size(), 12u);
  for (std::size_t i = 0; i < 12; ++i) {
    const auto& a = runs[0][i];
    const auto& b = runs[1][i];
    for (const char* key : {"step", "loss", "lr", "grad_norm", "tokens_per_s"}) ASSERT_TRUE(a.contains(key)) << key;
    EXPECT_EQ(a["step"].get<int>(), static_cast<int>(i) + 1);
    // Bitwise: compare the doubles' bits, not approximately.
    for (const char* key : {"loss", "lr", "grad_norm"}) {
      const double x = a[key].get<double>(), y = b[key].get<double>();
      EXPECT_EQ(std::memcmp(&x, &y, sizeof x), 0) << key << " at step " << i + 1;
    }
  }
  EXPECT_LT(runs[0].back()["loss"].get<double>(), runs[0].front()["loss"].get<double>() - 0.5);
}

// schedule.warmup_ratio (issue 19, item 8): transformers' TrainingArguments.get_warmup_steps,
// ceil(ratio * steps), here at most steps - 1 so that the peak is reached.
TEST(Trainer, WarmupRatioRoundsUpLikeTransformers) {
  config::ExperimentConfig c;
  c.train.steps = 500;
  c.schedule.warmup_ratio = 0.04;
  EXPECT_EQ(warmup_steps(c), 20);
  c.train.steps = 10;
  EXPECT_EQ(warmup_steps(c), 1);   // ceil(0.4)
  c.train.steps = 12;
  c.schedule.warmup_ratio = 0.2;
  EXPECT_EQ(warmup_steps(c), 3);   // ceil(2.4)
  c.train.steps = 10;
  c.schedule.warmup_ratio = 0.99;
  EXPECT_EQ(warmup_steps(c), 9);   // ceil(9.9) = 10, held to steps - 1
  c.train.steps = 1;
  EXPECT_EQ(warmup_steps(c), 0);
  c.schedule.warmup_ratio = 0.0;   // not used: warmup_steps is
  c.schedule.warmup_steps = 7;
  c.train.steps = 100;
  EXPECT_EQ(warmup_steps(c), 7);
  EXPECT_EQ(schedule_spec_from_config(c).warmup_steps, 7);
}

// train.epochs (issue 19, item 11): ceil(epochs * sequences / global_batch).
TEST(Trainer, StepsForEpochs) {
  EXPECT_EQ(steps_for_epochs(3, 10, 4), 8);    // 30 sequences: 7 full batches and a half
  EXPECT_EQ(steps_for_epochs(1, 10, 16), 1);   // less than one batch
  EXPECT_EQ(steps_for_epochs(2, 64, 16), 8);   // exact
  EXPECT_EQ(steps_for_epochs(1, 65, 16), 5);
}

TEST(Trainer, MetricsRoundTripFloats) {
  TempDir tmp;
  auto cfg = config::load_config_text(tiny_config(tmp / "r", kData), "tiny.yaml", {"train.steps=2", "schedule.warmup_steps=0"});
  const TrainSummary s = train(cfg);
  const auto recs = read_jsonl(tmp / "r/metrics.jsonl");
  ASSERT_EQ(recs.size(), 2u);
  // The logged loss is exactly the double the trainer computed.
  EXPECT_EQ(recs[1]["loss"].get<double>(), s.losses[1]);
}

TEST(Trainer, ResolvedConfigReloadsToTheSameConfig) {
  TempDir tmp;
  const auto cfg = config::load_config_text(tiny_config(tmp / "r", kData), "tiny.yaml", {"train.steps=1", "schedule.warmup_steps=0"});
  (void)train(cfg);
  const std::string resolved = read_file(tmp / "r/config.resolved.yaml");
  const auto again = config::load_config(tmp / "r/config.resolved.yaml");
  // Reloads to itself, with the `auto` layout keys resolved for the job that ran.
  EXPECT_EQ(config::to_yaml(again), resolved);
  EXPECT_EQ(again.parallel.data, 1);
  EXPECT_EQ(again.train.micro_batch, 2);
  auto expected = cfg;
  expected.parallel.data = 1;
  EXPECT_EQ(resolved, config::to_yaml(expected));
}

TEST(Trainer, BadDataFailsBeforeTheRunDirectoryExists) {
  TempDir tmp;
  {
    std::ofstream f(tmp / "bad.txt", std::ios::binary);
    f << "fine line\nbroken \xfe line\n";
  }
  const auto cfg = config::load_config_text(tiny_config(tmp / "run", tmp / "bad.txt"), "tiny.yaml");
  try {
    (void)train(cfg);
    FAIL() << "no error";
  } catch (const UserError& e) {
    EXPECT_EQ(std::string(e.what()), tmp / "bad.txt" + ":2: invalid UTF-8 (byte 0xfe at offset 17)");
  }
  EXPECT_FALSE(std::filesystem::exists(tmp / "run"));
}

TEST(Trainer, TooLittleDataIsAUserError) {
  TempDir tmp;
  {
    std::ofstream f(tmp / "short.txt");
    f << "tiny\n";
  }
  const auto cfg = config::load_config_text(tiny_config(tmp / "run", tmp / "short.txt"), "tiny.yaml");
  EXPECT_THROW((void)train(cfg), UserError);
  EXPECT_FALSE(std::filesystem::exists(tmp / "run"));
}

}  // namespace
}  // namespace tailor::trainer
