// Surviving faults under MPI, as users launch jobs (launch/mpirun.sh): kill -9 mid-run and resume
// (TP=2 x DP=2 with ZeRO), a crash at every point of the save sequence, resharding to other
// layouts, SIGUSR1 to one rank stopping every rank at the same step with exit 3, and the watchdog
// ending a job whose rank hangs.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>

#include "../trainer/test_dirs.h"

namespace {

namespace fs = std::filesystem;
using tailor::testing::read_file;
using tailor::testing::read_jsonl;
using tailor::testing::TempDir;

const std::string kTailor = TAILOR_BINARY_DIR "/tailor";
const std::string kLaunch = TAILOR_SOURCE_DIR "/launch/mpirun.sh";
const std::string kData = TAILOR_SOURCE_DIR "/datasets/devils-dictionary/devils_dictionary.txt";

struct Result {
  int code = -1;
  std::string err;
};

// Every job runs under timeout(1): one that hangs ends with 124 (137 after the kill), which no
// test expects. The bound only catches hangs, far above any normal run on a loaded machine.
constexpr const char* kHangGuard = "timeout --kill-after=10 300 ";
constexpr int kHangSeconds = 330;  // the guard and its kill, for waits on a background job

Result run(const std::string& cmd, const std::string& log_dir) {
  const std::string full = "cd " TAILOR_SOURCE_DIR " && " + std::string(kHangGuard) + cmd + " >" +
                           log_dir + "/out.txt 2>" + log_dir + "/err.txt";
  const int status = std::system(full.c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, read_file(log_dir + "/err.txt")};
}

void write(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

std::string config(const std::string& schedule = "cosine") {
  return "output: {dir: unset}\n"
         "model: {vocab_size: 257, hidden_size: 32, num_layers: 2, num_heads: 4, num_kv_heads: 2,\n"
         "        intermediate_size: 64, max_position_embeddings: 64}\n"
         "data: {train: " + kData + ", split: paragraph, seq_len: 32}\n"
         "train: {steps: 8, seed: 3, global_batch: 8, log_every: 1}\n"
         "optimizer: {lr: 3.0e-3, weight_decay: 0.1}\n"
         "schedule: {type: " + schedule + "}\n"
         "checkpoint: {every_steps: 2, keep_last: 10}\n"
         "runtime: {threads: 1, watchdog_s: 60}\n";
}

// (step, loss, lr, grad_norm) of every record: what must match bit for bit.
std::vector<std::string> trajectory(const std::string& run_dir) {
  std::vector<std::string> out;
  for (const auto& j : read_jsonl(run_dir + "/metrics.jsonl"))
    out.push_back(j["step"].dump() + " " + j["loss"].dump() + " " + j["lr"].dump() + " " +
                  j["grad_norm"].dump());
  return out;
}

// The shard files' hashes of a checkpoint (config.yaml names output.dir, so it is left out).
std::map<std::string, std::string> shard_hashes(const std::string& step_dir) {
  std::map<std::string, std::string> out;
  const auto m = nlohmann::json::parse(read_file(step_dir + "/manifest.json"));
  for (const auto& f : m["files"])
    if (f["name"] != "config.yaml") out[f["name"].get<std::string>()] = f["sha256"].get<std::string>();
  return out;
}

std::string train_cmd(int np, const std::string& cfg, const std::string& out,
                      const std::string& extra) {
  return kLaunch + " -np " + std::to_string(np) + " " + kTailor + " train " + cfg +
         " output.dir=" + out + " " + extra;
}

TEST(CheckpointMpi, KillNineAndResumeEqualsTheUninterruptedRun) {
  TempDir tmp;
  write(tmp / "cfg.yaml", config());
  const std::string layout = "parallel.tensor=2 optimizer.zero=1";
  ASSERT_EQ(run(train_cmd(4, tmp / "cfg.yaml", tmp / "full", layout), tmp.str()).code, 0);
  // Two kill points drawn at random (seeded, and printed so a failure can be replayed).
  std::mt19937 rng(static_cast<unsigned>(std::random_device{}()));
  const int k1 = 1 + static_cast<int>(rng() % 7);
  const int k2 = 1 + (k1 + static_cast<int>(rng() % 6)) % 7;  // another step than k1
  for (int k : {k1, k2}) {
    SCOPED_TRACE("killed after step " + std::to_string(k));
    const std::string out = tmp / ("killed" + std::to_string(k));
    const Result killed = run("env TAILOR_FAULT_KILL_AFTER_STEP=" + std::to_string(k) + ":1 " +
                                  train_cmd(4, tmp / "cfg.yaml", out, layout),
                              tmp.str());
    ASSERT_NE(killed.code, 0);
    // Checkpoints are every 2 steps and commit in the background: one is there to resume from
    // only once committed. Before step 2 there is none; step 2's commit may still be running when
    // steps 2-3 end (a loaded machine), but the save of step 4 waits for it, so from step 4 on
    // there must be one.
    const bool committed = fs::exists(out + "/checkpoints/latest");
    if (k < 2) EXPECT_FALSE(committed);
    if (k >= 4) EXPECT_TRUE(committed);
    const Result resumed = run(train_cmd(4, tmp / "cfg.yaml", out, layout), tmp.str());
    ASSERT_EQ(resumed.code, 0) << resumed.err;
    EXPECT_EQ(resumed.err.find("resumed from") != std::string::npos, committed) << resumed.err;
    EXPECT_EQ(trajectory(out), trajectory(tmp / "full"));
    EXPECT_EQ(shard_hashes(out + "/checkpoints/step_8"), shard_hashes(tmp / "full/checkpoints/step_8"));
  }
}

TEST(CheckpointMpi, ACrashAtAnyPointOfTheSaveResumesFromAVerifiedCheckpoint) {
  TempDir tmp;
  write(tmp / "cfg.yaml", config("constant"));
  const std::string layout = "parallel.data=2 optimizer.zero=1 train.steps=4 checkpoint.keep_last=1";
  ASSERT_EQ(run(train_cmd(2, tmp / "cfg.yaml", tmp / "full", layout), tmp.str()).code, 0);
  for (const char* point : {"shard", "fsync", "manifest", "rename", "latest", "prune"}) {
    SCOPED_TRACE(point);
    const std::string out = tmp / (std::string("crash-") + point);
    // Steps 1-2 and the step-2 checkpoint, then a crash while saving step 4.
    ASSERT_EQ(run(train_cmd(2, tmp / "cfg.yaml", out, layout + " train.steps=2"), tmp.str()).code, 0);
    const Result crashed = run(std::string("env TAILOR_FAULT_SAVE=") + point + " " +
                                   train_cmd(2, tmp / "cfg.yaml", out, layout),
                               tmp.str());
    ASSERT_NE(crashed.code, 0);
    const Result resumed = run(train_cmd(2, tmp / "cfg.yaml", out, layout), tmp.str());
    ASSERT_EQ(resumed.code, 0) << resumed.err;
    EXPECT_EQ(resumed.err.find("does not verify"), std::string::npos) << resumed.err;
    EXPECT_EQ(trajectory(out), trajectory(tmp / "full"));
    EXPECT_EQ(shard_hashes(out + "/checkpoints/step_4"), shard_hashes(tmp / "full/checkpoints/step_4"));
    EXPECT_EQ(fs::read_symlink(out + "/checkpoints/latest"), "step_4");
  }
}

TEST(CheckpointMpi, ADiskFullOnOneRankFailsTheSaveEverywhereAndKeepsLatest) {
  TempDir tmp;
  write(tmp / "cfg.yaml", config("constant"));
  const std::string out = tmp / "run";
  const std::string layout = "parallel.data=2 optimizer.zero=1 checkpoint.keep_last=1";
  ASSERT_EQ(run(train_cmd(2, tmp / "cfg.yaml", out, layout + " train.steps=2"), tmp.str()).code, 0);
  const std::string before = read_file(out + "/checkpoints/step_2/manifest.json");
  // Rank 1's shard write fails as on a full disk while saving step 4.
  const Result full = run("env TAILOR_FAULT_SAVE=enospc:1 " +
                              train_cmd(2, tmp / "cfg.yaml", out, layout + " train.steps=4"),
                          tmp.str());
  EXPECT_EQ(full.code, 1) << full.err;
  EXPECT_NE(full.err.find("checkpoint step_4 failed (writing)"), std::string::npos) << full.err;
  EXPECT_NE(full.err.find("No space left on device"), std::string::npos) << full.err;
  EXPECT_EQ(fs::read_symlink(out + "/checkpoints/latest"), "step_2");
  EXPECT_EQ(read_file(out + "/checkpoints/step_2/manifest.json"), before);
  EXPECT_FALSE(fs::exists(out + "/checkpoints/step_4.tmp"));
  EXPECT_FALSE(fs::exists(out + "/checkpoints/step_4"));
  // With space again, the same command resumes from step 2 and finishes.
  const Result again = run(train_cmd(2, tmp / "cfg.yaml", out, layout + " train.steps=4"), tmp.str());
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_NE(again.err.find("resumed from"), std::string::npos);
  EXPECT_EQ(fs::read_symlink(out + "/checkpoints/latest"), "step_4");
}

TEST(CheckpointMpi, ResumingUnderAnotherLayoutContinuesTheSameRun) {
  TempDir tmp;
  write(tmp / "cfg.yaml", config());
  // f64: layouts agree to ~1e-12, so a wrong tensor or optimizer moment after resharding shows.
  const std::string base = "runtime.dtype=f64 ";
  ASSERT_EQ(run(train_cmd(4, tmp / "cfg.yaml", tmp / "full",
                          base + "parallel.tensor=2 optimizer.zero=1"),
                tmp.str()).code, 0);
  const auto ref = read_jsonl(tmp / "full/metrics.jsonl");
  for (const char* layout : {"parallel.tensor=1", "parallel.tensor=4", "parallel.tensor=1 optimizer.zero=1"}) {
    SCOPED_TRACE(layout);
    const std::string out = tmp / "re";
    fs::remove_all(out);
    fs::create_directories(out + "/checkpoints");
    fs::copy(tmp / "full/checkpoints/step_4", out + "/checkpoints/step_4", fs::copy_options::recursive);
    const Result r = run(train_cmd(4, tmp / "cfg.yaml", out, base + layout), tmp.str());
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.err.find("resumed from"), std::string::npos);
    const auto got = read_jsonl(out + "/metrics.jsonl");
    ASSERT_EQ(got.size(), 4u);
    for (std::size_t i = 0; i < 4; ++i) {
      EXPECT_EQ(got[i]["step"], ref[i + 4]["step"]);
      const double a = got[i]["loss"].get<double>(), b = ref[i + 4]["loss"].get<double>();
      EXPECT_LE(std::abs(a - b), 1e-10 * b) << "step " << i + 5;
      const double ga = got[i]["grad_norm"].get<double>(), gb = ref[i + 4]["grad_norm"].get<double>();
      EXPECT_LE(std::abs(ga - gb), 1e-9 * gb) << "step " << i + 5;
    }
  }
}

// PIDs of the ranks (the processes running the tailor binary with this config).
std::vector<int> rank_pids(const std::string& cfg) {
  std::vector<int> out;
  for (const auto& e : fs::directory_iterator("/proc")) {
    const std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::error_code ec;
    if (fs::read_symlink(e.path() / "exe", ec) != fs::canonical(kTailor)) continue;
    if (read_file(e.path().string() + "/cmdline").find(cfg) != std::string::npos)
      out.push_back(std::stoi(name));
  }
  return out;
}

// Sends `signal` to one rank of a running 2-rank job: every rank saves the same step and the job
// exits 3; the same command then continues.
void expect_one_rank_signal_stops_the_job(int signal) {
  TempDir tmp;
  write(tmp / "cfg.yaml", config());
  const std::string out = tmp / "run";
  // The exit code goes to rc.tmp, then is renamed to rc.txt: rc.txt appears complete or not at all.
  const std::string cmd = "(" + std::string(kHangGuard) +
                          train_cmd(2, tmp / "cfg.yaml", out,
                                    "parallel.data=2 train.steps=100000 "
                                    "checkpoint.every_steps=0") +
                          " >" + tmp / "out.txt" + " 2>" + tmp / "err.txt" + "; echo $? >" +
                          tmp / "rc.tmp" + " && mv " + tmp / "rc.tmp" + " " + tmp / "rc.txt" +
                          ") &";
  ASSERT_EQ(std::system(("cd " TAILOR_SOURCE_DIR " && " + cmd).c_str()), 0);
  // Polling waits for an event (three complete metrics lines, the job's exit code), not for a
  // time; the deadline only stops a hung test, after the job's own guard has ended it.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(kHangSeconds);
  const auto complete_lines = [](const std::string& path) {
    const std::string text = read_file(path);  // a line being written has no '\n' yet
    return std::count(text.begin(), text.end(), '\n');
  };
  while (std::chrono::steady_clock::now() < deadline && !fs::exists(tmp / "rc.txt") &&
         complete_lines(out + "/metrics.jsonl") < 3)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_FALSE(fs::exists(tmp / "rc.txt")) << "the job ended early: " << read_file(tmp / "err.txt");
  const std::vector<int> pids = rank_pids(tmp / "cfg.yaml");
  ASSERT_EQ(pids.size(), 2u);
  ::kill(pids.back(), signal);  // one rank only
  while (std::chrono::steady_clock::now() < deadline && !fs::exists(tmp / "rc.txt"))
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_TRUE(fs::exists(tmp / "rc.txt")) << "the job did not stop";
  EXPECT_EQ(std::stoi(read_file(tmp / "rc.txt")), 3) << read_file(tmp / "err.txt");
  const std::string latest = out + "/checkpoints/latest";
  ASSERT_TRUE(fs::exists(latest));
  const auto s0 = nlohmann::json::parse(read_file(latest + "/state-rank0.json"));
  const auto s1 = nlohmann::json::parse(read_file(latest + "/state-rank1.json"));
  EXPECT_EQ(s0["step"], s1["step"]);
  EXPECT_EQ(read_jsonl(out + "/metrics.jsonl").back()["step"], s0["step"]);
  // The same command continues from there.
  const std::int64_t stopped = s0["step"].get<std::int64_t>();
  const Result more = run(train_cmd(2, tmp / "cfg.yaml", out,
                                    "parallel.data=2 checkpoint.every_steps=0 train.steps=" +
                                        std::to_string(stopped + 2)),
                          tmp.str());
  ASSERT_EQ(more.code, 0) << more.err;
  EXPECT_EQ(read_jsonl(out + "/metrics.jsonl").back()["step"], stopped + 2);
}

TEST(CheckpointMpi, SigusrToOneRankStopsEveryRankAtTheSameStepWithExit3) {
  expect_one_rank_signal_stops_the_job(SIGUSR1);
}

TEST(CheckpointMpi, SigtermToOneRankStopsEveryRankAtTheSameStepWithExit3) {
  expect_one_rank_signal_stops_the_job(SIGTERM);
}

TEST(CheckpointMpi, TheWatchdogEndsAJobWhoseRankHangs) {
  TempDir tmp;
  write(tmp / "cfg.yaml", config());
  // Without the watchdog the job hangs until the guard ends it (124), which is not the watchdog's
  // failure (exit 1) and does not print its line.
  const Result r = run("env TAILOR_FAULT_HANG_AT_STEP=3:1 " +
                           train_cmd(2, tmp / "cfg.yaml", tmp / "run",
                                     "parallel.data=2 runtime.watchdog_s=2"),
                       tmp.str());
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.code, 124) << "the hang guard, not the watchdog, ended the job";
  EXPECT_NE(r.code, 137) << "the hang guard, not the watchdog, ended the job";
  EXPECT_NE(r.err.find("watchdog: no progress for 2 s in step 3"), std::string::npos) << r.err;
}

}  // namespace
