// Training on a real GPU (label gpu; skipped without one, a failure under TAILOR_REQUIRE_GPU=1):
//  - 20 bf16 steps (f32 master weights) track the CPU's f32 losses within |dloss|/loss <= 2e-2, for
//    full fine-tuning and each PEFT method (ARCHITECTURE.md's bar);
//  - per parameter group, the gradient of one bf16 step (and of the second step, where LoRA A and
//    the adapters' down projections have one) and the parameters after the update track the
//    CPU's f32 within tolerances derived from bf16's unit roundoff (tests/trainer/one_step_check.h);
//  - the f32 CUDA mode (TF32 off) follows the CPU within 1e-4 per step;
//  - two GPU runs of one config give the same losses bit for bit (deterministic kernels, fixed
//    GEMM algorithms), and a run resumed from a checkpoint continues bit for bit.
// The same runs pass on the emulated device in CI (tests/trainer/emulated_device_test.cpp), which
// checks everything but the kernels and cuBLASLt.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "config/config.h"
#include "gpu_test_util.h"
#include "trainer/one_step_check.h"
#include "trainer/trainer.h"

namespace tailor::trainer {
namespace {

class TempDir {
 public:
  TempDir()
      : path_(std::filesystem::temp_directory_path() /
              ("tailor-gpu-train-" + std::to_string(::getpid()) + "-" + std::to_string(next()))) {
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  [[nodiscard]] std::string operator/(const std::string& leaf) const { return path_ / leaf; }

 private:
  static int next() {
    static int n = 0;
    return n++;
  }
  std::filesystem::path path_;
};

std::string config_text(const std::string& out_dir) {
  return "output: {dir: " + out_dir + "}\n"
         "model: {vocab_size: 257, hidden_size: 64, num_layers: 2, num_heads: 4, num_kv_heads: 2,\n"
         "        intermediate_size: 128, max_position_embeddings: 128}\n"
         "data: {train: " TAILOR_SOURCE_DIR "/datasets/devils-dictionary/devils_dictionary.txt,\n"
         "       split: paragraph, seq_len: 64}\n"
         "train: {steps: 20, seed: 5, global_batch: 8, micro_batch: 4, log_every: 5}\n"
         "optimizer: {lr: 3.0e-3, weight_decay: 0.1}\n"
         "schedule: {type: cosine, warmup_steps: 2}\n"
         "runtime: {threads: 4, log_level: warn}\n";
}

TrainSummary run(const std::string& dir, std::vector<std::string> overrides) {
  return train(config::load_config_text(config_text(dir), "gpu.yaml", overrides));
}

std::vector<std::string> with(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

void expect_tracks(const TrainSummary& got, const TrainSummary& want, double rtol) {
  ASSERT_EQ(got.losses.size(), want.losses.size());
  for (std::size_t i = 0; i < want.losses.size(); ++i) {
    EXPECT_TRUE(std::isfinite(got.losses[i])) << "step " << i + 1;
    EXPECT_LE(std::abs(got.losses[i] - want.losses[i]) / want.losses[i], rtol) << "step " << i + 1;
  }
}

class GpuTraining : public ::testing::TestWithParam<std::vector<std::string>> {
 protected:
  void SetUp() override { TAILOR_REQUIRE_GPU_OR_SKIP(); }
};

TEST_P(GpuTraining, Bf16TracksCpuF32) {
  TempDir dir;
  const TrainSummary cpu = run(dir / "cpu", with(GetParam(), {"runtime.device=cpu"}));
  const TrainSummary gpu = run(dir / "gpu", with(GetParam(), {"runtime.device=cuda"}));
  expect_tracks(gpu, cpu, 2e-2);
}

// Per parameter group, as the emulated device checks it in CI (emulated_device_test.cpp): one SGD
// step of a large rate (gradients and the updated parameters), then two of a small one (the
// second step's gradients). Dropout is off so both sides use the same function.
TEST_P(GpuTraining, Bf16GradientsAndUpdatesTrackTheCpuPerGroup) {
  for (const std::string& x : GetParam())
    if (x == "optimizer.moments=bf16") GTEST_SKIP() << "bf16 moments are AdamW's; this check is SGD";
  for (const auto& [steps, lr] : {std::pair{1, 100.0}, std::pair{2, 1.0}}) {
    SCOPED_TRACE("steps " + std::to_string(steps));
    TempDir dir;
    std::vector<std::string> o;
    for (const std::string& x : GetParam()) o.push_back(x == "peft.dropout=0.1" ? "peft.dropout=0.0" : x);
    o = with(o, tailor::testing::sgd_steps(steps, lr));
    TrainOptions keep;
    keep.keep_parameters = true;
    const TrainSummary cpu = train(
        config::load_config_text(config_text(dir / "cpu"), "gpu.yaml", with(o, {"runtime.device=cpu"})),
        nullptr, keep);
    const TrainSummary gpu = train(
        config::load_config_text(config_text(dir / "gpu"), "gpu.yaml", with(o, {"runtime.device=cuda"})),
        nullptr, keep);
    tailor::testing::expect_step_tracks(gpu, cpu, steps == 1 ? lr : 0.0, steps == 2);
  }
}

std::string method_name(const ::testing::TestParamInfo<std::vector<std::string>>& info) {
  static const char* const kNames[] = {"full",    "lora_dropout", "prompt_tuning",
                                       "adapter", "gpt2",         "bf16_moments"};
  return kNames[info.index];
}

INSTANTIATE_TEST_SUITE_P(
    Methods, GpuTraining,
    ::testing::Values(std::vector<std::string>{},
                      std::vector<std::string>{"peft.method=lora", "peft.rank=8",
                                               "peft.target_modules=[all-linear]",
                                               "peft.dropout=0.1"},
                      std::vector<std::string>{"peft.method=prompt_tuning",
                                               "peft.num_virtual_tokens=8"},
                      std::vector<std::string>{"peft.method=adapter", "peft.bottleneck=16"},
                      std::vector<std::string>{"model.family=gpt2", "model.num_kv_heads=4"},
                      std::vector<std::string>{"optimizer.moments=bf16"}),
    method_name);

TEST(GpuTrainingModes, F32ModeFollowsTheCpu) {
  TAILOR_REQUIRE_GPU_OR_SKIP();
  TempDir dir;
  const TrainSummary cpu = run(dir / "cpu", {"runtime.device=cpu", "train.steps=8"});
  const TrainSummary gpu =
      run(dir / "gpu", {"runtime.device=cuda", "runtime.dtype=f32", "train.steps=8"});
  expect_tracks(gpu, cpu, 1e-4);
}

TEST(GpuTrainingModes, TwoRunsAreBitwiseEqual) {
  TAILOR_REQUIRE_GPU_OR_SKIP();
  TempDir dir;
  const TrainSummary a = run(dir / "a", {"runtime.device=cuda", "train.steps=10"});
  const TrainSummary b = run(dir / "b", {"runtime.device=cuda", "train.steps=10"});
  ASSERT_EQ(a.losses.size(), 10u);
  EXPECT_EQ(a.losses, b.losses);
}

// bf16 with f32 master weights saved and restored: a run resumed from its step-4 checkpoint ends
// with the uninterrupted run's losses, bit for bit.
TEST(GpuTrainingModes, ResumeIsBitwise) {
  TAILOR_REQUIRE_GPU_OR_SKIP();
  TempDir dir;
  const std::vector<std::string> o = {"runtime.device=cuda", "train.steps=8",
                                      "checkpoint.every_steps=4", "checkpoint.keep_last=5"};
  const TrainSummary full = run(dir / "a", o);
  namespace fs = std::filesystem;
  fs::copy(dir / "a", dir / "b", fs::copy_options::recursive | fs::copy_options::copy_symlinks);
  const std::string ck = dir / "b/checkpoints";
  fs::remove_all(ck + "/step_8");
  fs::remove(ck + "/latest");
  fs::create_directory_symlink("step_4", ck + "/latest");
  const TrainSummary resumed = run(dir / "b", o);
  ASSERT_EQ(full.losses.size(), 8u);
  ASSERT_EQ(resumed.losses.size(), 4u);
  for (std::size_t i = 0; i < 4; ++i) EXPECT_EQ(resumed.losses[i], full.losses[4 + i]) << i;
}

}  // namespace
}  // namespace tailor::trainer
