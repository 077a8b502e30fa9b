// Preference objectives through the whole training run: a DPO, CPO, ORPO and SimPO run on pairs
// (byte tokenizer, a config-defined model) logs its rewards in metrics.jsonl; the step loss does
// not depend on how a step is split into micro-batches (f64); a DPO run resumes bit for bit with
// LoRA (reference: adapters off) and with full fine-tuning (reference: precomputed, read back
// from its cache on resume); the precomputed reference equals a frozen copy of the starting
// model; a bad pair is a `file:line` error.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "checkpoint/training_checkpoint.h"
#include "config/config.h"
#include "core/error.h"
#include "test_dirs.h"
#include "trainer/trainer.h"

namespace tailor::trainer {
namespace {

namespace fs = std::filesystem;
using tailor::testing::read_jsonl;
using tailor::testing::TempDir;

// Pairs whose chosen answer repeats the prompt's word and whose rejected answer scrambles it.
std::string write_pairs(const std::string& dir) {
  const std::string path = dir + "/pairs.jsonl";
  std::ofstream f(path);
  const char* words[] = {"apple", "river", "stone", "cloud", "maple", "tiger", "ocean", "lemon"};
  for (int i = 0; i < 24; ++i) {
    const std::string w = words[i % 8];
    std::string scrambled = w;
    std::swap(scrambled[0], scrambled[w.size() - 1]);
    f << "{\"prompt\": \"Say " << w << " " << i % 3 << ": \", \"chosen\": \"" << w
      << "\", \"rejected\": \"" << scrambled << " " << scrambled << "\"}\n";
  }
  return path;
}

std::string config_text(const std::string& out, const std::string& data, const std::string& extra) {
  return "output: {dir: " + out + "}\n"
         "model: {vocab_size: 257, hidden_size: 32, num_layers: 2, num_heads: 4, num_kv_heads: 2,\n"
         "        intermediate_size: 64, max_position_embeddings: 64}\n"
         "data: {train: " + data + ", format: jsonl, packing: pad, seq_len: 32}\n"
         "train: {steps: 8, seed: 5, global_batch: 4, micro_batch: 2, log_every: 1}\n"
         "optimizer: {lr: 3.0e-3}\n"
         "checkpoint: {every_steps: 4, keep_last: 5}\n"
         "runtime: {threads: 2}\n" + extra;
}

config::ExperimentConfig config_for(const std::string& out, const std::string& data,
                                    const std::vector<std::string>& overrides,
                                    const std::string& extra = "") {
  return config::load_config_text(config_text(out, data, extra), "cfg.yaml", overrides);
}

std::vector<nlohmann::json> metrics_without_timings(const std::string& run_dir) {
  std::vector<nlohmann::json> out = read_jsonl(run_dir + "/metrics.jsonl");
  for (nlohmann::json& j : out) {
    j.erase("tokens_per_s");
    j.erase("step_time_s");
  }
  return out;
}

TEST(PreferenceTrain, EveryObjectiveTrainsAndLogsItsRewards) {
  TempDir d;
  const std::string data = write_pairs(d.str());
  for (const char* type : {"dpo", "cpo", "orpo", "simpo"}) {
    SCOPED_TRACE(type);
    const std::string out = d / type;
    const TrainSummary s = train(config_for(out, data, {std::string("objective.type=") + type},
                                            "peft: {method: lora, rank: 4, alpha: 8}\n"));
    ASSERT_EQ(s.losses.size(), 8u);
    for (double l : s.losses) EXPECT_TRUE(std::isfinite(l));
    const std::vector<nlohmann::json> m = read_jsonl(out + "/metrics.jsonl");
    ASSERT_EQ(m.size(), 8u);
    for (const char* key : {"rewards_chosen", "rewards_rejected", "rewards_accuracy",
                            "rewards_margin", "logps_chosen", "logps_rejected"})
      EXPECT_TRUE(m.back().contains(key)) << key;
    EXPECT_EQ(m.back()["loss_tokens"], 4);  // pairs per step
    EXPECT_EQ(m.back()["tokens"], 4 * 2 * 32);
    // A DPO step at the start compares the policy with itself: log 2 exactly (LoRA's B is 0).
    if (std::string(type) == "dpo") EXPECT_NEAR(s.losses[0], std::log(2.0), 1e-6);
  }
}

// Gradient accumulation and the data order see pairs: one micro-batch of 4 pairs or four of 1
// give the same steps (f64).
TEST(PreferenceTrain, MicroBatchSplitDoesNotChangeTheSteps) {
  TempDir d;
  const std::string data = write_pairs(d.str());
  for (const char* type : {"dpo", "orpo"}) {
    SCOPED_TRACE(type);
    const std::vector<std::string> base = {std::string("objective.type=") + type,
                                           "runtime.dtype=f64", "train.steps=3"};
    std::vector<std::string> one = base, four = base;
    one.push_back("train.micro_batch=4");
    four.push_back("train.micro_batch=1");
    const TrainSummary a = train(config_for(d / (std::string(type) + "1"), data, one));
    const TrainSummary b = train(config_for(d / (std::string(type) + "4"), data, four));
    ASSERT_EQ(a.losses.size(), b.losses.size());
    for (std::size_t i = 0; i < a.losses.size(); ++i)
      EXPECT_NEAR(a.losses[i], b.losses[i], 1e-12 * std::abs(a.losses[i])) << i;
  }
}

void rewind_to(const std::string& run_dir, std::int64_t step) {
  const std::string ck = run_dir + "/checkpoints";
  for (const auto& c : checkpoint::list_checkpoints(ck))
    if (c.step > step) fs::remove_all(c.dir);
  fs::remove(ck + "/latest");
  fs::create_directory_symlink("step_" + std::to_string(step), ck + "/latest");
}

void expect_resume_is_exact(const std::string& extra) {
  TempDir d;
  const std::string data = write_pairs(d.str());
  const std::string a = d / "a", b = d / "b";
  const std::vector<std::string> o = {"objective.type=dpo"};
  const TrainSummary full = train(config_for(a, data, o, extra));
  (void)train(config_for(b, data, o, extra));
  rewind_to(b, 4);
  const TrainSummary resumed = train(config_for(b, data, o, extra));
  EXPECT_EQ(resumed.start_step, 4);
  ASSERT_EQ(resumed.losses.size(), 4u);
  for (std::size_t i = 0; i < 4; ++i) EXPECT_EQ(resumed.losses[i], full.losses[i + 4]) << i;
  EXPECT_EQ(metrics_without_timings(b), metrics_without_timings(a));
}

TEST(PreferenceTrain, DpoWithLoraResumesBitwise) {
  expect_resume_is_exact("peft: {method: lora, rank: 4, alpha: 8, target_modules: [all-linear]}\n");
}

TEST(PreferenceTrain, DpoFullFineTuningResumesBitwise) { expect_resume_is_exact(""); }

// Full fine-tuning's default reference is precomputed once and cached next to the tokenized
// data; its steps equal those against a frozen copy of the starting model (f64), a second run
// reads the cached table instead of recomputing it (a doctored table changes its losses), and a
// damaged table is an error naming it.
TEST(PreferenceTrain, PrecomputedReferenceEqualsTheFrozenCopyAndIsCached) {
  TempDir d;
  const std::string data = write_pairs(d.str());
  const std::string cache = d / "cache";
  const std::vector<std::string> o = {"objective.type=dpo", "runtime.dtype=f64",
                                      "train.steps=4", "data.cache_dir=" + cache};
  const auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> all = o;
    all.insert(all.end(), extra.begin(), extra.end());
    return all;
  };
  const TrainSummary frozen = train(config_for(d / "frozen", data, with({"objective.reference=model"})));
  const TrainSummary pre = train(config_for(d / "pre", data, o));
  ASSERT_EQ(pre.losses.size(), frozen.losses.size());
  for (std::size_t i = 0; i < pre.losses.size(); ++i)
    EXPECT_NEAR(pre.losses[i], frozen.losses[i], 1e-12 * std::abs(frozen.losses[i])) << i;
  EXPECT_NEAR(pre.losses[0], std::log(2.0), 1e-12);  // step 0: the policy is its reference
  // The table: one file next to the tokenized data, 2 rows per pair.
  std::vector<fs::path> tables;
  for (const auto& dir : fs::directory_iterator(cache))
    for (const auto& f : fs::directory_iterator(dir.path()))
      if (f.path().filename().string().starts_with("reference-")) tables.push_back(f.path());
  ASSERT_EQ(tables.size(), 1u);
  EXPECT_EQ(fs::file_size(tables[0]), 16u + 8u + 48u * 16u);
  // Read, not recomputed: doubling every stored value changes the steps.
  {
    std::fstream f(tables[0], std::ios::in | std::ios::out | std::ios::binary);
    for (int i = 0; i < 48; ++i) {
      double v = 0.0;
      f.seekg(24 + 16 * i + 8);
      f.read(reinterpret_cast<char*>(&v), sizeof v);
      v *= 2.0;
      f.seekp(24 + 16 * i + 8);
      f.write(reinterpret_cast<const char*>(&v), sizeof v);
    }
  }
  const TrainSummary doctored = train(config_for(d / "doctored", data, o));
  EXPECT_GT(std::abs(doctored.losses[0] - pre.losses[0]), 1e-3);
  fs::resize_file(tables[0], 20);
  try {
    (void)train(config_for(d / "damaged", data, o));
    ADD_FAILURE() << "trained from a damaged reference table";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find(tables[0].string()), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(d / "damaged/metrics.jsonl"));
}

TEST(PreferenceTrain, BadPairIsAFileLineError) {
  TempDir d;
  const std::string data = write_pairs(d.str());
  {
    std::ofstream f(data, std::ios::app);
    f << "{\"prompt\": \"x\", \"chosen\": \"y\"}\n";
  }
  try {
    (void)train(config_for(d / "out", data, {"objective.type=cpo"}));
    FAIL() << "no error";
  } catch (const UserError& e) {
    EXPECT_EQ(std::string(e.what()), data + ":25: missing field \"rejected\"");
  }
  EXPECT_FALSE(fs::exists(d / "out"));  // nothing written
}

}  // namespace
}  // namespace tailor::trainer
