// The `tailor` executable as users launch it with launch/mpirun.sh: layouts that give the
// single-process losses, one rank failing taking the whole job down with its exit code,
// and config errors reported once.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>

#include "../trainer/test_dirs.h"

namespace {

using tailor::testing::read_file;
using tailor::testing::read_jsonl;
using tailor::testing::TempDir;

struct Result {
  int code = -1;
  std::string err;
};

// A job that hangs is ended by timeout(1) (exit 124, or 137 after the kill), which no test
// expects: the bound only catches hangs, so it is far above any normal run on a loaded machine.
constexpr const char* kHangGuard = "timeout --kill-after=10 300 ";

Result run(const std::string& cmd, const TempDir& tmp) {
  const std::string full = "cd " TAILOR_SOURCE_DIR " && " + std::string(kHangGuard) + cmd + " >" +
                           tmp / "out.txt" + " 2>" + tmp / "err.txt";
  const int status = std::system(full.c_str());
  Result r;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.err = read_file(tmp / "err.txt");
  return r;
}

const std::string kTailor = TAILOR_BINARY_DIR "/tailor";
const std::string kLaunch = TAILOR_SOURCE_DIR "/launch/mpirun.sh";

std::string tiny(const std::string& out, const std::string& data) {
  return "output: {dir: " + out + "}\n"
         "model: {vocab_size: 257, hidden_size: 32, num_layers: 2, num_heads: 4, num_kv_heads: 2,\n"
         "        intermediate_size: 64, max_position_embeddings: 64}\n"
         "data: {train: " + data + ", split: paragraph, seq_len: 32}\n"
         "train: {steps: 4, global_batch: 8, log_every: 1}\n"
         "optimizer: {lr: 3.0e-3}\n";
}

void write(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  f << text;
}

const std::string kData = TAILOR_SOURCE_DIR "/datasets/devils-dictionary/devils_dictionary.txt";

TEST(CliMpi, LayoutsGiveTheSingleProcessLosses) {
  TempDir tmp;
  write(tmp / "cfg.yaml", tiny(tmp / "single", kData));
  ASSERT_EQ(run(kTailor + " train " + tmp / "cfg.yaml", tmp).code, 0);
  const auto ref = read_jsonl(tmp / "single/metrics.jsonl");
  ASSERT_EQ(ref.size(), 4u);
  for (const char* layout : {"parallel.tensor=2", "parallel.tensor=4", "parallel.tensor=1 optimizer.zero=1"}) {
    const std::string out = tmp / "par";
    const Result r = run(kLaunch + " -np 4 " + kTailor + " train " + tmp / "cfg.yaml" + " output.dir=" + out + " " + layout, tmp);
    ASSERT_EQ(r.code, 0) << layout << "\n" << r.err;
    const auto got = read_jsonl(out + "/metrics.jsonl");
    ASSERT_EQ(got.size(), 4u) << layout;
    for (std::size_t i = 0; i < 4; ++i) {
      const double a = got[i]["loss"].get<double>(), b = ref[i]["loss"].get<double>();
      EXPECT_LE(std::abs(a - b) / b, 1e-5) << layout << " step " << i + 1;
    }
    std::filesystem::remove_all(out);
  }
}

TEST(CliMpi, OneFailingRankEndsTheJobWithItsExitCode) {
  TempDir tmp;
  write(tmp / "bad.txt", "good\nbad \xc3\x28 pair\n");
  write(tmp / "good.yaml", tiny(tmp / "run", kData));
  write(tmp / "bad.yaml", tiny(tmp / "run", tmp / "bad.txt"));
  // Rank 0 is healthy and would wait forever in its first collective; rank 1 finds bad data. A job
  // that is not ended by rank 1's failure hangs until the guard ends it with 124 instead of 2.
  const Result r = run("mpirun --allow-run-as-root --oversubscribe --quiet -np 1 " + kTailor + " train " +
                           tmp / "good.yaml" + " : -np 1 " + kTailor + " train " + tmp / "bad.yaml",
                       tmp);
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("[rank 1] " + tmp / "bad.txt" + ":2: invalid UTF-8 (byte 0xc3 at offset 9)"),
            std::string::npos)
      << r.err;
}

TEST(CliMpi, ConfigErrorsAreReportedOnceAndExitTwo) {
  TempDir tmp;
  write(tmp / "cfg.yaml", tiny(tmp / "run", kData));
  const Result r = run(kLaunch + " -np 2 " + kTailor + " train " + tmp / "cfg.yaml" + " optimizer.lr=-1", tmp);
  EXPECT_EQ(r.code, 2);
  const std::string line = "<override 1>: optimizer.lr: must be > 0 (got -1)\n";
  const auto first = r.err.find(line);
  ASSERT_NE(first, std::string::npos) << r.err;
  EXPECT_EQ(r.err.find(line, first + 1), std::string::npos) << "reported twice:\n" << r.err;
  EXPECT_FALSE(std::filesystem::exists(tmp / "run"));
}

TEST(CliMpi, LayoutThatDoesNotFitIsAUserError) {
  TempDir tmp;
  write(tmp / "cfg.yaml", tiny(tmp / "run", kData));
  Result r = run(kLaunch + " -np 2 " + kTailor + " train " + tmp / "cfg.yaml" + " parallel.tensor=2 parallel.data=2", tmp);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("parallel: tensor (2) x data (2) = 4 ranks, but the job has 2"), std::string::npos) << r.err;
  // 4 query heads cannot be split 3 ways.
  r = run(kLaunch + " -np 3 " + kTailor + " train " + tmp / "cfg.yaml" + " parallel.tensor=3 train.global_batch=9", tmp);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("model.num_heads (4) must be divisible by parallel.tensor (3)"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(tmp / "run"));
}

}  // namespace
