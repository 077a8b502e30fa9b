// Issue 19, items 8 and 11: how long a run is. The bundled configs shorten with `train.steps=N`
// as the docs say (their warmup is a ratio of the steps), and `train.epochs` sets the length in
// passes over the data: ceil(epochs x sequences / global_batch) steps, stated in the run log,
// with a warning when the data is smaller than one global batch.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "cli/run_tailor.h"

namespace {

using tailor::testing::read_file;
using tailor::testing::read_jsonl;
using tailor::testing::run_tailor;
using tailor::testing::TempDir;
using tailor::testing::write_text;

TEST(TrainingLength, QuickstartShortenedByAnOverrideTrains) {
  TempDir tmp;
  const auto r = run_tailor("train configs/quickstart.yaml train.steps=10 runtime.threads=1"
                            " train.log_every=1 data.cache_dir=" + tmp / "cache" +
                                " output.dir=" + tmp / "run",
                            tmp);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("step 10/10 | loss "), std::string::npos) << r.err;
  // warmup_ratio 0.04 of 10 steps: ceil(0.4) = 1 warmup step (transformers: warmup =
  // ceil(ratio * steps)), so step 1 runs at lr * 1/1; the cosine decay then goes from the peak at
  // step 2 to lr * min_lr_ratio at step 10 (docs/decisions.md, 3).
  const auto records = read_jsonl(tmp / "run/metrics.jsonl");
  ASSERT_EQ(records.size(), 10u);
  EXPECT_DOUBLE_EQ(records[0]["lr"].get<double>(), 3.0e-3);
  EXPECT_DOUBLE_EQ(records[1]["lr"].get<double>(), 3.0e-3);
  EXPECT_LT(records[2]["lr"].get<double>(), 3.0e-3);
  EXPECT_DOUBLE_EQ(records[9]["lr"].get<double>(), 3.0e-4);
}

// Ten one-line documents of 8 bytes + EOS, one per padded sequence of 16: 10 sequences, known
// without asking Tailor.
std::string ten_docs_config(const TempDir& tmp, const std::string& train) {
  std::string text;
  for (int i = 0; i < 10; ++i) text += "line " + std::to_string(100 + i) + "\n";
  write_text(tmp / "docs.txt", text);
  return "output: {dir: " + tmp / "run" + "}\n"
         "model: {vocab_size: 257, hidden_size: 16, num_layers: 1, num_heads: 2,\n"
         "        intermediate_size: 32, max_position_embeddings: 64}\n"
         "data: {train: " + tmp / "docs.txt" + ", seq_len: 16, split: line, packing: pad,\n"
         "       cache_dir: " + tmp / "cache" + "}\n"
         "train: " + train + "\n"
         "optimizer: {lr: 1.0e-3}\n"
         "schedule: {warmup_ratio: 0.25}\n"
         "runtime: {threads: 1}\n";
}

TEST(TrainingLength, EpochsBecomeStepsAndTheLogSaysSo) {
  TempDir tmp;
  write_text(tmp / "cfg.yaml", ten_docs_config(tmp, "{epochs: 3, global_batch: 4}"));
  const auto r = run_tailor("train " + tmp / "cfg.yaml", tmp);
  ASSERT_EQ(r.code, 0) << r.err;
  // ceil(3 * 10 / 4) = 8 steps; warmup ceil(0.25 * 8) = 2.
  EXPECT_NE(r.err.find("training: 8 steps x 4 sequences (4 per micro-batch) = 3 epochs of 10 "
                       "sequences (2.50 steps per epoch)"),
            std::string::npos)
      << r.err;
  const auto records = read_jsonl(tmp / "run/metrics.jsonl");
  ASSERT_EQ(records.size(), 8u);
  EXPECT_DOUBLE_EQ(records[0]["lr"].get<double>(), 0.5e-3);
  EXPECT_DOUBLE_EQ(records[1]["lr"].get<double>(), 1.0e-3);
  EXPECT_EQ(r.err.find("fewer than one global batch"), std::string::npos) << r.err;
  // The resolved config holds the steps the run took (and loads back as they are).
  const std::string resolved = read_file(tmp / "run/config.resolved.yaml");
  EXPECT_NE(resolved.find("  steps: 8\n  # epochs: 3 (resolved into steps)\n"), std::string::npos)
      << resolved;
  // (--overwrite: its output.dir is the finished run itself)
  const auto again = run_tailor("validate --overwrite " + tmp / "run/config.resolved.yaml", tmp);
  EXPECT_EQ(again.code, 0) << again.err;
}

TEST(TrainingLength, DataSmallerThanOneGlobalBatchWarns) {
  TempDir tmp;
  write_text(tmp / "cfg.yaml", ten_docs_config(tmp, "{epochs: 1, global_batch: 16}"));
  const auto r = run_tailor("train " + tmp / "cfg.yaml", tmp);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("warning: data: 10 packed sequences, fewer than one global batch "
                       "(train.global_batch 16)"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(read_jsonl(tmp / "run/metrics.jsonl").size(), 1u);  // ceil(10 / 16)
}

TEST(TrainingLength, WarmupInStepsMustFitTheStepsOfTheEpochs) {
  TempDir tmp;
  write_text(tmp / "cfg.yaml", ten_docs_config(tmp, "{epochs: 1, global_batch: 4}"));
  const auto r = run_tailor("train " + tmp / "cfg.yaml schedule.warmup_ratio=0 "
                            "schedule.warmup_steps=3", tmp);
  EXPECT_EQ(r.code, 2);
  // (after the data preparation's line: the data had to be packed to count the steps)
  const std::string error = tmp / "cfg.yaml" + ": schedule.warmup_steps (3) must be < "
                            "train.steps (3: train.epochs 1 of 10 sequences, 4 per step); use "
                            "schedule.warmup_ratio\n";
  EXPECT_TRUE(r.err.ends_with("\n" + error)) << r.err;
  EXPECT_FALSE(std::filesystem::exists(tmp / "run"));
}

}  // namespace
