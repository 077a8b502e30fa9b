// `tailor export --checkpoint` of a checkpoint saved under tensor 2 x data 2 with ZeRO-1, run as
// one process: the tensors are resharded to TP = 1 and equal (f64 training, so only the f32
// rounding of the export remains) those the TP = 1 run exports itself.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <string>
#include <vector>

#include "../trainer/test_dirs.h"
#include "checkpoint/safetensors.h"

namespace {

using tailor::testing::read_file;
using tailor::testing::TempDir;

int run(const std::string& cmd, const TempDir& tmp) {
  const std::string full = "cd " TAILOR_SOURCE_DIR " && " + cmd + " >" + tmp / "out.txt" + " 2>" +
                           tmp / "err.txt";
  const int status = std::system(full.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

const std::string kTailor = TAILOR_BINARY_DIR "/tailor";
const std::string kLaunch = TAILOR_SOURCE_DIR "/launch/mpirun.sh";
const std::string kData = TAILOR_SOURCE_DIR "/datasets/devils-dictionary/devils_dictionary.txt";

TEST(CheckpointCliMpi, ExportReshardsATensorParallelCheckpoint) {
  TempDir tmp;
  {
    std::ofstream f(tmp / "cfg.yaml");
    f << "output: {dir: " << tmp / "single" << "}\n"
      << "model: {vocab_size: 257, hidden_size: 32, num_layers: 2, num_heads: 4, num_kv_heads: 2,\n"
         "        intermediate_size: 64, max_position_embeddings: 64}\n"
      << "data: {train: " << kData << ", split: paragraph, seq_len: 32}\n"
      << "train: {steps: 3, global_batch: 8}\n"
         "optimizer: {lr: 3.0e-3}\n"
         "checkpoint: {every_steps: 3}\n"
         "runtime: {dtype: f64}\n";
  }
  ASSERT_EQ(run(kTailor + " train " + tmp / "cfg.yaml", tmp), 0) << read_file(tmp / "err.txt");
  const std::string par = tmp / "par";
  ASSERT_EQ(run(kLaunch + " -np 4 " + kTailor + " train " + tmp / "cfg.yaml" + " output.dir=" +
                    par + " parallel.tensor=2 optimizer.zero=1",
                tmp),
            0)
      << read_file(tmp / "err.txt");
  ASSERT_EQ(run(kTailor + " inspect " + par, tmp), 0) << read_file(tmp / "err.txt");
  EXPECT_NE(read_file(tmp / "out.txt").find("tensor 2 x data 2 (4 ranks), ZeRO-1"), std::string::npos);
  ASSERT_EQ(run(kTailor + " export --checkpoint " + par + " --out " + tmp / "exported", tmp), 0)
      << read_file(tmp / "err.txt");

  const tailor::checkpoint::SafetensorsFile want(tmp / "single/export/model.safetensors");
  const tailor::checkpoint::SafetensorsFile got(tmp / "exported/model.safetensors");
  ASSERT_EQ(want.names(), got.names());
  for (const std::string& name : want.names()) {
    ASSERT_EQ(want.info(name).shape, got.info(name).shape) << name;
    const auto n = static_cast<std::size_t>(want.info(name).numel);
    std::vector<float> a(n), b(n);
    want.read_f32(name, a);
    got.read_f32(name, b);
    float scale = 0.0f, diff = 0.0f;
    for (std::size_t i = 0; i < n; ++i) {
      scale = std::max(scale, std::abs(a[i]));
      diff = std::max(diff, std::abs(a[i] - b[i]));
    }
    EXPECT_LE(diff, 1e-6f * scale) << name;
  }
}

}  // namespace
