// The trainer on the CUDA backend's contracts without a GPU: the emulated device
// (backend/emulated_device_ops.h, TAILOR_EMULATE_CUDA=1) keeps every tensor in memory that host
// code may only reach through Ops::copy and emulates bf16 storage the way the kernels compute.
//
//  - In f32 the emulated device runs the same CPU arithmetic, so a run must equal the CPU run bit
//    for bit: any host access to device memory, any batch or scratch buffer left on the host, or
//    any missed transfer fails an assertion or changes a bit. Checked for full fine-tuning, LoRA
//    with dropout, prompt tuning, bottleneck adapters, the GPT-2 family, SGD and ZeRO-free AdamW.
//  - In bf16 (f32 master weights, f32 gradients and moments) 20 steps track the CPU's f32 losses
//    within |dloss|/loss <= 2e-2 (ARCHITECTURE.md's bar for the GPU), and master weights are what
//    the checkpoint stores and resumes from, bit for bit.
//  - An f32 CPU checkpoint continues on the device in bf16, its master weights taken exactly from
//    the stored f32 weights.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "backend/emulated_device_ops.h"
#include "checkpoint/training_checkpoint.h"
#include "config/config.h"
#include "core/error.h"
#include "one_step_check.h"
#include "test_dirs.h"
#include "trainer/device.h"
#include "trainer/trainer.h"

namespace tailor::trainer {
namespace {

namespace fs = std::filesystem;
using tailor::testing::TempDir;

const char* kData = TAILOR_SOURCE_DIR "/datasets/devils-dictionary/devils_dictionary.txt";

// Sets TAILOR_EMULATE_CUDA for the scope of a test.
class EmulatedDevice : public ::testing::Test {
 protected:
  void SetUp() override { ::setenv("TAILOR_EMULATE_CUDA", "1", 1); }
  void TearDown() override { ::unsetenv("TAILOR_EMULATE_CUDA"); }
};

std::string config_text(const std::string& out_dir, const std::string& model_extra,
                        const std::string& extra) {
  return "output: {dir: " + out_dir + "}\n"
         "model: {vocab_size: 257, hidden_size: 32, num_layers: 2, num_heads: 4, num_kv_heads: 2,\n"
         "        intermediate_size: 64, max_position_embeddings: 64" + model_extra + "}\n"
         "data: {train: " + kData + ", split: paragraph, seq_len: 32}\n"
         "train: {steps: 6, seed: 5, global_batch: 8, micro_batch: 4, log_every: 1}\n"
         "optimizer: {lr: 3.0e-3, weight_decay: 0.1}\n"
         "schedule: {type: cosine, warmup_steps: 2}\n"
         "runtime: {threads: 2}\n" + extra;
}

TrainSummary run(const std::string& dir, const std::vector<std::string>& overrides,
                 const std::string& model_extra = "", const std::string& extra = "",
                 const TrainOptions& options = {}) {
  return train(config::load_config_text(config_text(dir, model_extra, extra), "cfg.yaml", overrides),
               nullptr, options);
}

struct Variant {
  const char* name;
  std::vector<std::string> overrides;
  std::string model_extra;
};

std::vector<Variant> variants() {
  return {
      {"full", {}, ""},
      {"lora_dropout",
       {"peft.method=lora", "peft.rank=4", "peft.dropout=0.1", "peft.target_modules=[all-linear]"},
       ""},
      {"prompt_tuning", {"peft.method=prompt_tuning", "peft.num_virtual_tokens=4"}, ""},
      {"adapter", {"peft.method=adapter", "peft.bottleneck=8"}, ""},
      {"ia3",
       {"peft.method=ia3", "peft.target_modules=[all-linear]",
        "peft.feedforward_modules=[q_proj, o_proj]"},
       ""},
      {"dora",
       {"peft.method=lora", "peft.rank=4", "peft.use_dora=true",
        "peft.target_modules=[all-linear]"},
       ""},
      {"gpt2", {"model.family=gpt2", "model.num_kv_heads=4"}, ""},
      {"sgd", {"optimizer.name=sgd", "optimizer.momentum=0.9"}, ""},
      {"loss_chunk", {"runtime.loss_chunk_tokens=24"}, ""},  // 24 does not divide 4 x 32
  };
}

TEST_F(EmulatedDevice, F32RunEqualsTheCpuRunBitForBit) {
  for (const Variant& v : variants()) {
    SCOPED_TRACE(v.name);
    TempDir dir;
    std::vector<std::string> cpu = v.overrides, dev = v.overrides;
    cpu.insert(cpu.end(), {"runtime.device=cpu", "runtime.dtype=f32"});
    dev.insert(dev.end(), {"runtime.device=cuda", "runtime.dtype=f32"});
    TrainOptions keep;
    keep.keep_parameters = true;
    const TrainSummary a = run(dir / "cpu", cpu, v.model_extra, "", keep);
    const TrainSummary b = run(dir / "dev", dev, v.model_extra, "", keep);
    ASSERT_EQ(a.losses.size(), 6u);
    ASSERT_EQ(b.losses.size(), a.losses.size());
    for (std::size_t i = 0; i < a.losses.size(); ++i) EXPECT_EQ(a.losses[i], b.losses[i]) << i;
    ASSERT_EQ(a.parameters.size(), b.parameters.size());
    for (std::size_t i = 0; i < a.parameters.size(); ++i) {
      EXPECT_EQ(a.parameters[i].name, b.parameters[i].name);
      EXPECT_EQ(a.parameters[i].values, b.parameters[i].values) << a.parameters[i].name;
    }
  }
}

// The preference objectives on the device: their per-row log-probabilities and row weights go
// through the same ops, so an f32 run equals the CPU run bit for bit — DPO with full
// fine-tuning (the precomputed reference, its pass run on each backend), DPO with LoRA (adapters
// off) and ORPO.
TEST_F(EmulatedDevice, F32PreferenceRunEqualsTheCpuRunBitForBit) {
  TempDir dir;
  const std::string pairs = dir / "pairs.jsonl";
  {
    std::ofstream f(pairs);
    const char* words[] = {"apple", "river", "stone", "cloud", "maple", "tiger"};
    for (int i = 0; i < 12; ++i) {
      std::string w = words[i % 6], s = w;
      std::swap(s[0], s[s.size() - 1]);
      f << "{\"prompt\": \"Say " << w << " " << i % 2 << ": \", \"chosen\": \"" << w
        << "\", \"rejected\": \"" << s << " " << s << "\"}\n";
    }
  }
  const auto text = [&](const std::string& out) {
    return "output: {dir: " + out + "}\n"
           "model: {vocab_size: 257, hidden_size: 32, num_layers: 2, num_heads: 4, "
           "num_kv_heads: 2, intermediate_size: 64, max_position_embeddings: 64}\n"
           "data: {train: " + pairs + ", format: jsonl, packing: pad, seq_len: 32, cache_dir: " +
           (dir / "cache") + "}\n"
           "train: {steps: 4, seed: 5, global_batch: 4, micro_batch: 2, log_every: 1}\n"
           "optimizer: {lr: 3.0e-3}\n"
           "runtime: {threads: 2, dtype: f32}\n";
  };
  const std::vector<std::pair<const char*, std::vector<std::string>>> cases = {
      {"dpo_full", {"objective.type=dpo"}},
      {"dpo_lora", {"objective.type=dpo", "peft.method=lora", "peft.rank=4",
                    "peft.target_modules=[all-linear]"}},
      {"orpo", {"objective.type=orpo"}}};
  for (const auto& [name, overrides] : cases) {
    SCOPED_TRACE(name);
    std::vector<std::string> cpu = overrides, dev = overrides;
    cpu.push_back("runtime.device=cpu");
    dev.push_back("runtime.device=cuda");
    TrainOptions keep;
    keep.keep_parameters = true;
    const std::string a_dir = dir / (std::string(name) + "_cpu");
    const std::string b_dir = dir / (std::string(name) + "_dev");
    const TrainSummary a =
        train(config::load_config_text(text(a_dir), "cfg.yaml", cpu), nullptr, keep);
    const TrainSummary b =
        train(config::load_config_text(text(b_dir), "cfg.yaml", dev), nullptr, keep);
    ASSERT_EQ(a.losses.size(), 4u);
    ASSERT_EQ(b.losses.size(), a.losses.size());
    for (std::size_t i = 0; i < a.losses.size(); ++i) EXPECT_EQ(a.losses[i], b.losses[i]) << i;
    ASSERT_EQ(a.parameters.size(), b.parameters.size());
    for (std::size_t i = 0; i < a.parameters.size(); ++i)
      EXPECT_EQ(a.parameters[i].values, b.parameters[i].values) << a.parameters[i].name;
    // The rewards are logged the same.
    const auto ma = tailor::testing::read_jsonl(a_dir + "/metrics.jsonl");
    const auto mb = tailor::testing::read_jsonl(b_dir + "/metrics.jsonl");
    ASSERT_EQ(ma.size(), mb.size());
    EXPECT_EQ(ma.back()["rewards_margin"], mb.back()["rewards_margin"]);
  }
}

TEST_F(EmulatedDevice, Bf16TracksCpuF32LossesWithinTwoPercent) {
  TempDir dir;
  const std::vector<std::string> steps = {"train.steps=20"};
  std::vector<std::string> cpu = steps, dev = steps;
  cpu.push_back("runtime.device=cpu");
  dev.push_back("runtime.device=cuda");  // runtime.dtype auto: bf16 on the device
  const TrainSummary a = run(dir / "cpu", cpu);
  const TrainSummary b = run(dir / "dev", dev);
  ASSERT_EQ(a.losses.size(), 20u);
  ASSERT_EQ(b.losses.size(), 20u);
  bool any_difference = false;
  for (std::size_t i = 0; i < a.losses.size(); ++i) {
    EXPECT_LE(std::abs(b.losses[i] - a.losses[i]) / a.losses[i], 2e-2) << "step " << i + 1;
    any_difference = any_difference || a.losses[i] != b.losses[i];
  }
  EXPECT_TRUE(any_difference) << "bf16 storage should round somewhere";
  EXPECT_LT(b.losses.back(), b.losses.front() - 0.5) << "bf16 training must still learn";
}

// bf16 against the CPU's f32, per parameter group (tests/trainer/one_step_check.h has the
// tolerances and their derivation): after one SGD step of a large rate, the gradient every group
// received and the parameters after the update; after two steps of a small one, the second
// step's gradients, where LoRA A and the adapters' down projections (zero at the first step,
// their partner starting at zero) have one too. Full fine-tuning, LoRA, prompt tuning,
// bottleneck adapters and the GPT-2 family (biases, LayerNorm, learned positions, tied head).
TEST_F(EmulatedDevice, Bf16GradientsAndUpdatesTrackTheCpuPerGroup) {
  for (const Variant& v : variants()) {
    if (std::string(v.name) == "sgd") continue;  // every run below is SGD
    for (const auto& [steps, lr] : {std::pair{1, 100.0}, std::pair{2, 1.0}}) {
      SCOPED_TRACE(std::string(v.name) + ", steps " + std::to_string(steps));
      TempDir dir;
      std::vector<std::string> cpu;
      for (const std::string& o : v.overrides)  // the same dropout masks are not the point here
        cpu.push_back(o == "peft.dropout=0.1" ? "peft.dropout=0.0" : o);
      for (const std::string& o : tailor::testing::sgd_steps(steps, lr)) cpu.push_back(o);
      std::vector<std::string> dev = cpu;
      cpu.push_back("runtime.device=cpu");
      dev.push_back("runtime.device=cuda");  // runtime.dtype auto: bf16 on the device
      TrainOptions keep;
      keep.keep_parameters = true;
      const TrainSummary a = run(dir / "cpu", cpu, v.model_extra, "", keep);
      const TrainSummary b = run(dir / "dev", dev, v.model_extra, "", keep);
      tailor::testing::expect_step_tracks(b, a, steps == 1 ? lr : 0.0, steps == 2);
    }
  }
}

// A copy of an 8-step run directory as if the run had crashed after its step-4 checkpoint.
void copy_rewound_to_step_4(const std::string& from, const std::string& to) {
  fs::copy(from, to, fs::copy_options::recursive | fs::copy_options::copy_symlinks);
  const std::string ck = to + "/checkpoints";
  fs::remove_all(ck + "/step_8");
  fs::remove(ck + "/latest");
  fs::create_directory_symlink("step_4", ck + "/latest");
}

TEST_F(EmulatedDevice, Bf16CheckpointHoldsMasterWeightsAndResumesExactly) {
  TempDir dir;
  const std::vector<std::string> o = {"runtime.device=cuda", "train.steps=8",
                                      "checkpoint.every_steps=4", "checkpoint.keep_last=5"};
  const TrainSummary full = run(dir / "a", o);
  ASSERT_EQ(full.losses.size(), 8u);
  const std::string step4 = dir / "a/checkpoints/step_4";
  const checkpoint::Manifest m = checkpoint::read_manifest(step4);
  EXPECT_EQ(m.dtype, "bf16");
  checkpoint::CheckpointReader optim(step4, m, "optim-");
  EXPECT_TRUE(optim.has("master/model.layers.0.self_attn.q_proj.weight"));
  EXPECT_EQ(optim.dtype("master/model.layers.0.self_attn.q_proj.weight"), DType::kF32);
  checkpoint::CheckpointReader model(step4, m, "model-");
  EXPECT_EQ(model.dtype("model.layers.0.self_attn.q_proj.weight"), DType::kBF16);

  // Continue a copy of the run from step 4: the same losses, bit for bit.
  copy_rewound_to_step_4(dir / "a", dir / "b");
  const TrainSummary resumed = run(dir / "b", o);
  EXPECT_EQ(resumed.start_step, 4);
  ASSERT_EQ(resumed.losses.size(), 4u);
  for (std::size_t i = 0; i < 4; ++i) EXPECT_EQ(resumed.losses[i], full.losses[4 + i]) << i;
}

TEST_F(EmulatedDevice, F32CpuCheckpointContinuesInBf16OnTheDevice) {
  TempDir dir;
  const std::vector<std::string> base = {"train.steps=8", "checkpoint.every_steps=4",
                                         "checkpoint.keep_last=5"};
  std::vector<std::string> cpu = base, dev = base;
  cpu.push_back("runtime.device=cpu");
  dev.push_back("runtime.device=cuda");
  const TrainSummary reference = run(dir / "a", cpu);
  copy_rewound_to_step_4(dir / "a", dir / "b");
  const TrainSummary moved = run(dir / "b", dev);
  EXPECT_EQ(moved.start_step, 4);
  ASSERT_EQ(moved.losses.size(), 4u);
  for (std::size_t i = 0; i < 4; ++i)
    EXPECT_LE(std::abs(moved.losses[i] - reference.losses[4 + i]) / reference.losses[4 + i], 2e-2)
        << i;
}

// optimizer.moments: bf16 — the moments are stored in bf16 (updated in f32, rounded once): the
// run still tracks the CPU's f32 run, the checkpoint holds bf16 moments and f32 master weights,
// and resuming from it is exact.
TEST_F(EmulatedDevice, Bf16MomentsTrackF32AndResumeExactly) {
  TempDir dir;
  const TrainSummary cpu = run(dir / "cpu", {"runtime.device=cpu", "train.steps=8"});
  const std::vector<std::string> o = {"runtime.device=cuda", "optimizer.moments=bf16",
                                      "train.steps=8", "checkpoint.every_steps=4",
                                      "checkpoint.keep_last=5"};
  const TrainSummary full = run(dir / "a", o);
  ASSERT_EQ(full.losses.size(), 8u);
  for (std::size_t i = 0; i < 8; ++i)
    EXPECT_LE(std::abs(full.losses[i] - cpu.losses[i]) / cpu.losses[i], 2e-2) << "step " << i + 1;
  const std::string step4 = dir / "a/checkpoints/step_4";
  checkpoint::CheckpointReader optim(step4, checkpoint::read_manifest(step4), "optim-");
  const std::string w = "model.layers.1.mlp.down_proj.weight";
  EXPECT_EQ(optim.dtype("exp_avg/" + w), DType::kBF16);
  EXPECT_EQ(optim.dtype("exp_avg_sq/" + w), DType::kBF16);
  EXPECT_EQ(optim.dtype("master/" + w), DType::kF32);
  copy_rewound_to_step_4(dir / "a", dir / "b");
  const TrainSummary resumed = run(dir / "b", o);
  ASSERT_EQ(resumed.losses.size(), 4u);
  for (std::size_t i = 0; i < 4; ++i) EXPECT_EQ(resumed.losses[i], full.losses[4 + i]) << i;
}

TEST_F(EmulatedDevice, Bf16RecomputationChangesNoBit) {
  TempDir dir;
  const TrainSummary none = run(dir / "none", {"runtime.device=cuda"});
  const TrainSummary sel = run(dir / "sel", {"runtime.device=cuda", "train.recompute=selective"});
  const TrainSummary full = run(dir / "full", {"runtime.device=cuda", "train.recompute=full"});
  ASSERT_EQ(none.losses.size(), 6u);
  EXPECT_EQ(sel.losses, none.losses);
  EXPECT_EQ(full.losses, none.losses);
}

TEST_F(EmulatedDevice, ConfigErrorsNameTheKey) {
  TempDir dir;
  try {
    (void)run(dir / "x", {"runtime.device=cuda", "runtime.dtype=f64"});
    FAIL() << "f64 on the device was accepted";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("runtime.dtype"), std::string::npos) << e.what();
  }
  try {
    (void)run(dir / "y", {"runtime.device=cpu", "runtime.dtype=bf16"});
    FAIL() << "bf16 on the CPU was accepted";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("runtime.dtype"), std::string::npos) << e.what();
  }
  try {
    (void)run(dir / "z", {"runtime.device=cpu", "optimizer.moments=bf16"});
    FAIL() << "bf16 moments on the CPU were accepted";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("optimizer.moments"), std::string::npos) << e.what();
  }
}

// Backend selection without the emulation hook: auto falls back to the CPU in f32 when no GPU is
// visible; an explicit cuda is a user error naming the place, before anything runs.
TEST(DeviceSelection, AutoIsTheCpuAndCudaIsRefusedWithoutAGpu) {
  if (visible_gpus() > 0) GTEST_SKIP() << "a GPU is visible";
  config::RuntimeConfig r;
  const std::unique_ptr<backend::Ops> ops = make_ops(r, 1, "cfg.yaml");
  EXPECT_EQ(ops->device(), backend::Device::kCpu);
  EXPECT_EQ(compute_dtype(r, ops->device()), DType::kF32);
  r.device = config::RuntimeDevice::kCuda;
  try {
    (void)make_ops(r, 1, "--device");
    FAIL() << "runtime.device cuda without a GPU was accepted";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("--device"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("no GPU is visible"), std::string::npos) << e.what();
  }
}

TEST(EmulatedDeviceMemory, HostCodeCannotReadDeviceTensors) {
  backend::EmulatedDeviceOps ops(1);
  const backend::Buffer b = ops.alloc(DType::kF32, Shape{4});
  EXPECT_THROW((void)b.tensor().ptr<float>(), InternalError);
  // Ops refuse host operands.
  std::vector<float> host(4, 1.0f);
  const backend::Tensor h{host.data(), DType::kF32, Shape{4}};
  EXPECT_THROW(ops.add(b.tensor(), h, 1.0), InternalError);
  // copy moves data both ways, converting dtypes.
  std::vector<double> src = {1.0, -2.5, 3.25, 1.0 / 3.0};
  const backend::Buffer bf = ops.alloc(DType::kBF16, Shape{4});
  ops.copy(bf.tensor(), backend::Tensor{src.data(), DType::kF64, Shape{4}});
  std::vector<float> back(4);
  ops.copy(backend::Tensor{back.data(), DType::kF32, Shape{4}}, bf.tensor());
  EXPECT_EQ(back[0], 1.0f);
  EXPECT_EQ(back[1], -2.5f);
  EXPECT_EQ(back[2], 3.25f);
  EXPECT_EQ(back[3], round_to_bf16(static_cast<float>(1.0 / 3.0)));
}

}  // namespace
}  // namespace tailor::trainer
