// What a new user runs in sequence (issue 19): `validate` refuses what `train` would refuse, all
// problems at once and nothing written; `train` into an earlier run's directory is refused
// unless --overwrite; an export of a byte-tokenizer model serves `score` and `generate`; `eval
// --checkpoint` on a run that saved none says where its model is.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "cli/run_tailor.h"

namespace {

namespace fs = std::filesystem;
using tailor::testing::read_file;
using tailor::testing::TempDir;

using Result = tailor::testing::TailorResult;
constexpr auto run = &tailor::testing::run_tailor;

int lines(const std::string& s) { return static_cast<int>(std::count(s.begin(), s.end(), '\n')); }

constexpr auto write = &tailor::testing::write_text;

// Every file under `dir` with its size (what "nothing written" compares).
std::string tree(const std::string& dir) {
  std::vector<std::string> entries;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    entries.push_back(fs::relative(e.path(), dir).string() +
                      (e.is_regular_file() ? " " + std::to_string(e.file_size()) : "/"));
  std::sort(entries.begin(), entries.end());
  std::string out;
  for (const std::string& e : entries) out += e + "\n";
  return out;
}

const std::string kData = TAILOR_SOURCE_DIR "/datasets/devils-dictionary/devils_dictionary.txt";

std::string tiny(const std::string& out_dir, const std::string& extra = "") {
  return "output: {dir: " + out_dir + "}\n"
         "model: {vocab_size: 257, hidden_size: 16, num_layers: 1, num_heads: 2,\n"
         "        intermediate_size: 32, max_position_embeddings: 64}\n"
         "data: {train: " + kData + ", split: paragraph, seq_len: 16}\n"
         "train: {steps: 2, global_batch: 4}\n"
         "optimizer: {lr: 1.0e-3}\n" + extra;
}

TEST(Preflight, ValidateChecksTheLayoutForTheJobsRanksAndWritesNothing) {
  TempDir tmp;
  write(tmp / "cfg.yaml", tiny(tmp / "run"));
  const std::string before = tree(tmp.str());
  // A global batch of 6 fits one rank but not 4 data-parallel ranks, which no YAML check sees.
  Result r = run("validate " + tmp / "cfg.yaml" + " train.global_batch=6 --ranks 4", tmp);
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_EQ(lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("train.global_batch (6) must be a multiple of parallel.data (4)"),
            std::string::npos) << r.err;
  r = run("validate " + tmp / "cfg.yaml" + " train.global_batch=6", tmp);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("valid (1 rank)"), std::string::npos) << r.err;
  // Nothing was written but the captured output.
  fs::remove(tmp / "stdout.txt");
  fs::remove(tmp / "stderr.txt");
  EXPECT_EQ(tree(tmp.str()), before);
}

// A trained tiny run, trained once by the first test that asks (TempDir needs a running test):
// its export is a model directory of the byte tokenizer's model.
class TrainedRun : public testing::Test {
 protected:
  void SetUp() override {
    if (tmp_ == nullptr) {
      tmp_ = std::make_unique<TempDir>();
      write(*tmp_ / "cfg.yaml", tiny(*tmp_ / "run"));
      const Result r = run("train " + *tmp_ / "cfg.yaml", *tmp_);
      ASSERT_EQ(r.code, 0) << r.err;
    }
  }
  static void TearDownTestSuite() { tmp_.reset(); }
  static std::unique_ptr<TempDir> tmp_;
};
std::unique_ptr<TempDir> TrainedRun::tmp_;

TEST_F(TrainedRun, TrainingAgainIntoTheRunIsRefusedUnlessOverwrite) {
  const TempDir& tmp = *tmp_;
  const std::string metrics = read_file(tmp / "run/metrics.jsonl");
  ASSERT_FALSE(metrics.empty());
  Result r = run("train " + tmp / "cfg.yaml" + " optimizer.lr=2e-3", tmp);
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("output.dir holds a finished run (metrics.jsonl, config.resolved.yaml, "
                       "export/, tb/) and no checkpoint to resume from; `tailor train "
                       "--overwrite` replaces it"),
            std::string::npos) << r.err;
  EXPECT_EQ(read_file(tmp / "run/metrics.jsonl"), metrics);  // untouched
  // validate says the same; with --overwrite both go ahead.
  r = run("validate " + tmp / "cfg.yaml", tmp);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--overwrite"), std::string::npos) << r.err;
  EXPECT_EQ(run("validate --overwrite " + tmp / "cfg.yaml", tmp).code, 0);
  // (on a copy: the other tests use the run)
  const std::string copy = tmp / "copy";
  fs::create_directories(copy);
  fs::copy(tmp / "run", copy + "/run", fs::copy_options::recursive);
  write(copy + "/cfg.yaml", tiny(copy + "/run"));
  r = run("train --overwrite " + copy + "/cfg.yaml train.steps=3", tmp);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(read_file(copy + "/run/metrics.jsonl"), metrics);
}

TEST_F(TrainedRun, TheExportOfAByteTokenizerModelServesScoreAndGenerate) {
  const TempDir& tmp = *tmp_;
  const std::string model = tmp / "run/export";
  ASSERT_TRUE(fs::exists(model + "/tokenizer.json"));
  const TempDir& work = tmp;
  // Three records of known bytes: the byte tokenizer gives one token per byte and one EOS each.
  const std::vector<std::string> texts = {"abc", "Wörterbuch", "x y\tz"};
  std::string jsonl;
  std::int64_t tokens = 0;
  for (const std::string& t : texts) {
    jsonl += nlohmann::json{{"text", t}}.dump() + "\n";
    tokens += static_cast<std::int64_t>(t.size()) + 1;
  }
  write(work / "records.jsonl", jsonl);
  Result r = run("score --model " + model + " --data " + work / "records.jsonl", work);
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string last = r.out.substr(r.out.rfind('{'));
  const nlohmann::json j = nlohmann::json::parse(last);
  EXPECT_EQ(j["records"].get<int>(), 3);
  // Every token after the first of each record is predicted: bytes + EOS - 1 per record.
  EXPECT_EQ(j["tokens"].get<std::int64_t>(), tokens - 3) << last;
  r = run("generate --model " + model + " --prompt 'The ' --max-new-tokens 4", work);
  EXPECT_EQ(r.code, 0) << r.err;
}

TEST_F(TrainedRun, EvalOfARunWithoutCheckpointsNamesItsExport) {
  const TempDir& tmp = *tmp_;
  const Result r = run("eval " + tmp / "cfg.yaml" + " --checkpoint " + tmp / "run" +
                           " --no-generate --data " TAILOR_SOURCE_DIR
                           "/datasets/gettext-translations/dev.sample.jsonl",
                       tmp);
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("a run directory with no checkpoint"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(tmp / "run/export"), std::string::npos) << r.err;
}

TEST(Preflight, ValidateChecksTheModelDirectoryWithoutReadingWeights) {
  TempDir tmp;
  // A model directory: the export of a trained tiny run.
  write(tmp / "cfg.yaml", tiny(tmp / "base"));
  ASSERT_EQ(run("train " + tmp / "cfg.yaml", tmp).code, 0);
  const std::string model = tmp / "base/export";
  const std::string cfg = "output: {dir: " + tmp / "ft" + "}\n"
                          "model: {path: " + model + "}\n"
                          "data: {train: " + kData + ", split: paragraph, seq_len: 16}\n"
                          "train: {steps: 1, global_batch: 2}\n"
                          "optimizer: {lr: 1.0e-3}\n";
  write(tmp / "ft.yaml", cfg);
  EXPECT_EQ(run("validate " + tmp / "ft.yaml", tmp).code, 0);
  // Three problems at once, none of which the YAML checks can see: past the model's 64
  // positions (its config.json), a global batch 4 ranks cannot split, a truncated weights file.
  const std::string weights = model + "/model.safetensors";
  fs::resize_file(weights, fs::file_size(weights) - 100);
  Result r = run("validate " + tmp / "ft.yaml data.seq_len=65 train.global_batch=6 --ranks 4", tmp);
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(lines(r.err), 3) << r.err;
  EXPECT_NE(r.err.find("data.seq_len (65) exceeds the model's 64 positions"), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("train.global_batch (6) must be a multiple of parallel.data (4)"),
            std::string::npos) << r.err;
  EXPECT_NE(r.err.find(weights + ": "), std::string::npos) << r.err;
  // train refuses it the same way, before writing anything.
  r = run("train " + tmp / "ft.yaml", tmp);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find(weights + ": "), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(tmp / "ft"));
  fs::remove(weights);
  r = run("validate " + tmp / "ft.yaml", tmp);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find(model), std::string::npos) << r.err;
}

}  // namespace
